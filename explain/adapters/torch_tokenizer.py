"""Any tokenizer a hand-written model comes with, as the Hugging Face-style object the adapters call.

- a `tokenizers` JSON file or `tokenizers.Tokenizer`: wrapped in `PreTrainedTokenizerFast`
  (offsets give the word grouping); its pad/unk/mask/eos/bos tokens are found by their usual
  names ([PAD], <pad>, <|endoftext|>, ...) or given as `special_tokens`;
- a Hugging Face tokenizer folder: `AutoTokenizer`, offline;
- any object with `encode(str) -> list[int]` and `decode(list[int]) -> str` (tiktoken-like):
  `EncodeDecodeTokenizer`, whose offsets come from decoding growing prefixes (used when the
  decoded text is the input text; otherwise words are grouped from the decoded pieces).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CheckpointError

ROLES: dict[str, tuple[str, ...]] = {
    "pad": ("[PAD]", "<pad>", "<|pad|>", "<PAD>"),
    "unk": ("[UNK]", "<unk>", "<|unk|>", "<UNK>"),
    "mask": ("[MASK]", "<mask>", "<|mask|>"),
    "cls": ("[CLS]", "<cls>"),
    "sep": ("[SEP]", "<sep>"),
    "eos": ("<|endoftext|>", "</s>", "<eos>", "[EOS]", "<|eos|>"),
    "bos": ("<s>", "<bos>", "[BOS]", "<|bos|>"),
}


def as_hf_tokenizer(tokenizer: Any, special_tokens: Mapping[str, str] | None = None) -> Any:
    """Return a Hugging Face-style tokenizer for a path, a `tokenizers.Tokenizer`, an HF tokenizer or an encode/decode object."""
    if isinstance(tokenizer, (str, os.PathLike)):
        return load_tokenizer(Path(tokenizer), special_tokens)
    try:
        import tokenizers

        if isinstance(tokenizer, tokenizers.Tokenizer):
            return _fast(tokenizer, special_tokens)
    except ImportError:  # pragma: no cover - tokenizers comes with transformers
        pass
    if callable(tokenizer) and hasattr(tokenizer, "convert_ids_to_tokens"):
        return tokenizer  # already a Hugging Face tokenizer
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode"):
        return EncodeDecodeTokenizer(tokenizer, special_tokens)
    raise CheckpointError(
        f"cannot use a {type(tokenizer).__name__} as a tokenizer: give a tokenizers JSON file, a Hugging Face "
        "tokenizer (or its folder), or an object with encode(str) -> ids and decode(ids) -> str"
    )


def load_tokenizer(path: Path, special_tokens: Mapping[str, str] | None = None) -> Any:
    """Return the tokenizer in a `tokenizers` JSON file or a Hugging Face tokenizer folder."""
    if path.is_dir():
        import transformers

        try:
            return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as e:  # transformers raises many types for an unreadable folder
            raise CheckpointError(f"{path} is not a usable tokenizer folder: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    if not path.is_file():
        raise CheckpointError(f"tokenizer not found: {path}")
    import tokenizers

    try:
        tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a generic Exception for a bad file
        raise CheckpointError(f"{path} is not a tokenizers JSON file: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    return _fast(tok, special_tokens)


def _fast(tok: Any, special_tokens: Mapping[str, str] | None) -> Any:
    from transformers import PreTrainedTokenizerFast

    vocab = tok.get_vocab(with_added_tokens=True)
    given = dict(special_tokens or {})
    for role in given:
        if role not in ROLES:
            raise CheckpointError(f"unknown special token role {role!r}: use {', '.join(ROLES)}")
        if given[role] not in vocab:
            raise CheckpointError(f"special token {given[role]!r} ({role}) is not in the tokenizer's vocabulary")
    kwargs = {}
    for role, names in ROLES.items():
        name = given.get(role) or next((n for n in names if n in vocab), None)
        if name is not None:
            kwargs[f"{role}_token"] = name
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def vocab_size(tokenizer: Any) -> int | None:
    """Return how many token ids the tokenizer can produce, or None when it cannot say."""
    for attr in ("n_vocab", "vocab_size_total"):
        v = getattr(tokenizer, attr, None)
        if isinstance(v, int):
            return v
    try:
        return len(tokenizer)
    except (TypeError, CheckpointError):  # an encode/decode tokenizer that does not say: None
        v = getattr(tokenizer, "vocab_size", None)
        return v if isinstance(v, int) else None


class EncodeDecodeTokenizer:
    """An encode/decode tokenizer (tiktoken-like) with the calls the text adapters make."""

    is_fast = True  # offsets are computed from decoded prefixes (see _offsets)
    model_max_length = None
    # The vocabulary size when the inner tokenizer does not say it (no n_vocab, vocab_size or
    # len): the loader sets the model's embedding size here, as the README promises any
    # encode/decode object works.
    known_size: int | None = None

    def __init__(self, inner: Any, special_tokens: Mapping[str, Any] | None = None) -> None:
        """Wrap `inner`; special_tokens maps roles (eos, pad, ...) to token ids (or texts it encodes to one id)."""
        self.inner = inner
        ids: dict[str, int | None] = {role: None for role in ROLES}
        eot = getattr(inner, "eot_token", None)  # tiktoken's end-of-text id
        if isinstance(eot, int):
            ids["eos"] = eot
        for role in ROLES:
            v = getattr(inner, f"{role}_token_id", None)
            if isinstance(v, int):
                ids[role] = v
        for role, v in (special_tokens or {}).items():
            if role not in ROLES:
                raise CheckpointError(f"unknown special token role {role!r}: use {', '.join(ROLES)}")
            ids[role] = v if isinstance(v, int) else self._one_id(str(v))
        for role, v in ids.items():
            setattr(self, f"{role}_token_id", v)
        self.all_special_ids = sorted({v for v in ids.values() if v is not None})

    def _one_id(self, text: str) -> int:
        got = list(self.inner.encode(text, allowed_special="all") if _takes(self.inner.encode, "allowed_special") else self.inner.encode(text))
        if len(got) != 1:
            raise CheckpointError(f"special token {text!r} encodes to {len(got)} ids, not one")
        return int(got[0])

    def __len__(self) -> int:
        """Return the vocabulary size (n_vocab, vocab_size, or len of the inner tokenizer)."""
        for attr in ("n_vocab", "vocab_size"):
            v = getattr(self.inner, attr, None)
            if isinstance(v, int):
                return v
        try:
            return len(self.inner)
        except TypeError as e:
            if self.known_size is not None:
                return self.known_size
            raise CheckpointError("the tokenizer does not say its vocabulary size (n_vocab, vocab_size or len)") from e

    def __call__(
        self,
        text: str,
        add_special_tokens: bool = True,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        **_: Any,
    ) -> dict[str, Any]:
        """Return {"input_ids", "special_tokens_mask"[, "offset_mapping"]} for one text."""
        ids = [int(i) for i in self.inner.encode(text)]
        special = set(self.all_special_ids)
        out: dict[str, Any] = {"input_ids": ids, "special_tokens_mask": [int(i in special) for i in ids]}
        if return_offsets_mapping:
            offsets = self._offsets(text, ids)
            if offsets is not None:
                out["offset_mapping"] = offsets
        return out

    def _offsets(self, text: str, ids: Sequence[int]) -> list[tuple[int, int]] | None:
        """Return each token's character span from decoded prefixes, or None when they do not spell `text`."""
        spans, before = [], ""
        for k in range(len(ids)):
            now = self.decode(ids[: k + 1])
            if not now.startswith(before):
                return None
            spans.append((len(before), len(now)))
            before = now
        return spans if before == text else None

    def decode(self, ids: Sequence[int], **_: Any) -> str:
        """Return the text of token ids."""
        return str(self.inner.decode([int(i) for i in ids]))

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Return each id's own decoded piece (with its leading space, which starts a word)."""
        return [self.decode([i]) for i in ids]


def _takes(fn: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
