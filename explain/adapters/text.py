"""Adapter for Hugging Face sequence classifiers of the BERT family (BERT, DistilBERT, RoBERTa...)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch

from ..errors import InputError, MethodError
from ..results.explanation import InputRecord, ModelInfo, Target
from ..execution.runner import Runner
from .answer_row import answer_rows
from .attention_impl import eager_attention
from . import removal, textview
from .base import NO_GRADIENT, Adapter, AttentionView, Example, GradientView, PerturbationView, check_gradient, select_output, transform
from .words import Tokenized, Units, tokenize, units

Tok = TypeVar("Tok", bound=Tokenized)

# Removals in order of preference for the default (see default_baseline); "drop" needs no token.
REMOVALS = ("mask", "unk", "pad", "drop")
_TOKEN_OF = {"mask": "mask_token_id", "unk": "unk_token_id", "pad": "pad_token_id"}


class TextClassifierAdapter(Adapter):
    """Tokenisation, word grouping, embeddings and batched forwards of a text classifier."""

    family = "text-classifier"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, info: ModelInfo, runner: Runner) -> None:
        super().__init__(model, info, runner)
        self.tokenizer = tokenizer
        # right padding of batched rows (always under attention mask 0): any id will do
        self.pad_id = _first_id(tokenizer, ("pad_token_id", "unk_token_id", "eos_token_id"), 0)
        # the fill token of each removal this tokenizer has ("drop" needs none)
        self.fill_ids: dict[str, int] = {
            name: int(v) for name, attr in _TOKEN_OF.items() if (v := getattr(tokenizer, attr, None)) is not None
        }
        self.mask_id = self.fill_ids.get("mask", self.fill_ids.get("unk", self.pad_id))
        self.unk_id = self.fill_ids.get("unk", self.mask_id)
        self._pad_positions: bool | None = None  # see _pads_move_positions

    @property
    def baselines(self) -> tuple[str, ...]:
        """Return the removals this tokenizer allows: mask, unk, pad (each if it has the token), drop."""
        return tuple(r for r in REMOVALS if r == "drop" or r in self.fill_ids)

    @property
    def default_baseline(self) -> str:
        """Return the removal every method uses when none is set: "mask" where the tokenizer has one.

        A masked word is what a BERT-family encoder learnt as "a word is missing here" in its
        masked-LM pre-training, and the length and positions stay, so IG can use it too (it
        cannot drop words). The bundled classifier, trained with [MASK], [UNK], [PAD] and
        dropped words as "absent", reads all four as absent (removing the planted word gives
        neutral for 200 of 200 held-out sentences under each). Tokenizers without a mask token
        fall back on unk, then pad, then drop (IG, which cannot drop, then uses zero embeddings).
        """
        return self.baselines[0]

    def check_baseline(self, name: str, gradient: bool = False) -> str:
        """Return `name` if this model can remove words that way (IG: `gradient`); else raise MethodError."""
        return removal.check(self.family, name, self.baselines, gradient=gradient)

    def fill_id(self, name: str) -> int | None:
        """Return the token id removed words become under removal `name` (None: dropped, or IG's zero)."""
        return self.fill_ids.get(name)

    # ---- inputs -------------------------------------------------------------------------
    def prepare(self, raw: Any, index: int, max_length: int | None = None, truncate: bool = True, **_: Any) -> Example:
        """Tokenise one text and compute the model's class probabilities once."""
        tok, limit = self._tokenized(raw, index, max_length, truncate)
        probs = self.predict([list(tok.ids)])[0]
        note = None
        if tok.truncated_from is not None:
            note = f"truncated from {tok.truncated_from} to {len(tok.ids)} tokens (model maximum {limit})"
        pred = int(np.argmax(probs))
        record = InputRecord(
            index=index,
            kind="text",
            text=raw,
            prediction=Target(index=pred, label=self.labels[pred], probability=float(probs[pred])),
            note=note,
            probabilities=tuple(float(p) for p in probs),  # every class, in label order
        )
        return Example(index=index, record=record, probs=probs, state=tok)

    def _embedded(self, tok: Any, baseline: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (the text's embeddings (1, T, D), the all-removed baseline's, an all-ones attention mask)."""
        ids = torch.tensor([tok.ids], device=self.device)
        special = torch.tensor([tok.special], device=self.device)
        emb = self.model.get_input_embeddings()
        with torch.no_grad():
            inputs = emb(ids).detach()
        return inputs, textview.baseline_embeddings(emb, ids, special, self.fill_id(baseline)), torch.ones_like(ids)

    def _tokenized(self, raw: Any, index: int, max_length: int | None, truncate: bool) -> tuple[Tokenized, int | None]:
        """Return one text tokenised within the length limit (and that limit), or raise InputError."""
        if not isinstance(raw, str):
            raise InputError(f"input {index}: expected a text, got {type(raw).__name__}")
        if not raw.strip():
            raise InputError(f"input {index}: the text is empty")
        return self._within_limit(lambda limit: tokenize(self.tokenizer, raw, limit), index, max_length, truncate, "text")

    def _within_limit(
        self, make: Callable[[int | None], Tok], index: int, max_length: int | None, truncate: bool, what: str
    ) -> tuple[Tok, int | None]:
        """Return make(limit) under the run's and the model's length limit (and that limit), or raise InputError."""
        limits = [x for x in (max_length, self.info.max_length) if x]
        limit = min(limits) if limits else None
        tok = make(limit)
        if tok.truncated_from is not None and not truncate:
            raise InputError(f"input {index}: {tok.truncated_from} tokens is longer than the limit of {limit}")
        if not tok.word_tokens:
            raise InputError(f"input {index}: the {what} has no tokens besides special tokens")
        return tok, limit

    def units(self, tok: Tokenized, granularity: str) -> Units:
        """Return the features (whole words, or raw non-special tokens) of a tokenised text."""
        return units(tok, granularity)

    # ---- batched forwards ---------------------------------------------------------------
    def logits_of(self, rows: Sequence[Sequence[int] | np.ndarray]) -> torch.Tensor:
        """Return (B, C) logits for a batch of token-id rows, right-padded to the longest.

        Decoder-only classifiers (GPT-2, Llama ... *ForSequenceClassification) answer from the
        last token whose id is not `config.pad_token_id`, and refuse batches of more than one
        row when it is None. Rows are padded with that id when the config has one (what the
        model itself reads as padding); when it has none, the model reads every row's last
        token, so for the call the config names a pad id that occurs in no row (the adapter's
        pad id unless a row holds it) and is restored after: the model is left as it was.
        """
        config = getattr(self.model, "config", None)
        configured = getattr(config, "pad_token_id", None)
        pad = self.pad_id if configured is None else int(configured)
        if configured is None and len(rows) > 1 and config is not None:
            pad = _unused_id(rows, self.pad_id, int(getattr(config, "vocab_size", 0) or 0))
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        with self._pad_named(pad if len(rows) > 1 else None):
            return self.model(**self.id_inputs(ids.to(self.device)), attention_mask=mask.to(self.device)).logits

    def id_inputs(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the model's token input for rows of ids: `input_ids`, or their embeddings when
        the rows hold the model's pad id and the model numbers positions by skipping it.

        RoBERTa, XLM-R and MPNet give a pad token no position and move every later token back
        by one, so a word filled with [PAD] ("pad" removal) would also shift the words after it
        in SHAP's, LIME's and ablation's rows, but not in IG's, which are embeddings (positions
        counted plainly). Given as embeddings, every method's pad-filled word keeps its place and
        moves no other word: the removal means the same in every method.
        """
        pad = getattr(getattr(self.model, "config", None), "pad_token_id", None)
        if pad is None or not bool((ids == int(pad)).any()) or not self._pads_move_positions(int(pad)):
            return {"input_ids": ids}
        return {"inputs_embeds": self.model.get_input_embeddings()(ids)}

    def _pads_move_positions(self, pad: int) -> bool:
        """Return (once, then cached) whether a pad id inside a row changes the model's output other
        than as its embedding would, while right padding under attention mask 0 changes nothing."""
        if self._pad_positions is None:
            vocab = int(getattr(self.model.config, "vocab_size", 0) or 0)
            x = next(i for i in (self.unk_id, self.mask_id, pad + 1, pad - 1) if i != pad and i >= 0 and (not vocab or i < vocab))
            emb = self.model.get_input_embeddings()

            def both(row: list[int], mask: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
                ids = torch.tensor([row], device=self.device)
                m = torch.tensor([mask], device=self.device)
                by_id = self.model(input_ids=ids, attention_mask=m).logits
                by_embedding = self.model(inputs_embeds=emb(ids), attention_mask=m).logits
                if by_id.dim() == 3:  # a token classifier: the unmasked positions' logits
                    return by_id[:, : sum(mask)], by_embedding[:, : sum(mask)]
                return by_id, by_embedding

            try:
                with torch.no_grad():
                    inside = both([x, pad, x, x], [1, 1, 1, 1])
                    right = both([x, x, x, pad], [1, 1, 1, 0])
            except Exception:  # a model that takes no embeddings (or no 4-token row): ids as they are
                self._pad_positions = False
                return False
            moved = not torch.allclose(*inside, rtol=1e-4, atol=1e-5)
            self._pad_positions = moved and torch.allclose(*right, rtol=1e-4, atol=1e-5)
        return self._pad_positions

    @contextmanager
    def _pad_named(self, pad: int | None) -> Iterator[None]:
        """Within the block, a model config without a pad id names `pad` (None: leave it); restored after.

        transformers' decoder-only classifiers refuse a batch of more than one row when
        config.pad_token_id is None, even of unpadded rows (IG's embeddings), and then read each
        row's last token, as they do for one row.
        """
        config = getattr(self.model, "config", None)
        if pad is None or config is None or getattr(config, "pad_token_id", 0) is not None:
            yield
            return
        config.pad_token_id = pad
        try:
            yield
        finally:
            config.pad_token_id = None

    def predict(self, rows: Sequence[Sequence[int] | np.ndarray], output: str = "probability") -> np.ndarray:
        """Return (B, C) outputs for token-id rows through the batched runner (unique rows once)."""
        unique: dict[tuple[int, ...], int] = {}
        keys = [unique.setdefault(tuple(r), len(unique)) for r in rows]
        distinct = list(unique)
        # share: any input's rows go through logits_of alike, so inputs explained side by side share calls
        logits = self.runner.map(distinct, lambda b: self.logits_of(b), key=len, share="text-logits")
        return transform(logits, output, self.head).numpy()[np.asarray(keys)]

    # ---- views --------------------------------------------------------------------------
    def resolve_baseline(self, options: dict[str, Any], gradient: bool) -> str:
        """Return the removal the view options ask for (`baseline`, or its old name `mask`), checked."""
        name, option = removal.requested(options)
        name = name or removal.default(self.baselines, gradient)  # IG without a fill token: zero
        return removal.check(self.family, name, self.baselines, gradient=gradient, option=option)

    def gradient_view(
        self,
        example: Example,
        target: Target,
        granularity: str = "word",
        output: str | None = None,
        **options: Any,
    ) -> GradientView:
        """Return word embeddings, the all-removed input's embeddings as baseline, and the forward."""
        tok: Tokenized = example.state
        output = output or "probability"
        name = self.resolve_baseline(options, gradient=True)
        inputs, base, mask = self._embedded(tok, name)

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            # without input ids a decoder-only classifier reads each row's last token (no padding here)
            with self._pad_named(self.pad_id):
                out = self.model(inputs_embeds=x, attention_mask=mask.expand(x.shape[0], -1))
            return select_output(check_gradient(out.logits, x, self.model), target.index, output, self.head)

        return textview.gradient_view(inputs, base, forward, self.units(tok, granularity), tok.tokens, name, output)

    def perturbation_view(
        self,
        example: Example,
        target: Target,
        granularity: str = "word",
        output: str | None = None,
        **options: Any,
    ) -> PerturbationView:
        """Return the text's words (or tokens) as features, removed the way `baseline` says."""
        tok: Tokenized = example.state
        output = output or "probability"
        name = self.resolve_baseline(options, gradient=False)

        def score(rows: list[np.ndarray]) -> np.ndarray:
            if any(len(r) == 0 for r in rows):  # only `drop`, on a tokenizer that adds no special tokens
                raise MethodError(
                    "every word dropped leaves no token at all (this tokenizer adds no special tokens), and a "
                    f"classifier cannot score an empty text: use a removal that fills words with a token{_others(self.baselines)}"
                )
            return self.predict(rows, output)[:, target.index]

        units_ = self.units(tok, granularity)
        return textview.perturbation_view(units_, tok.ids, tok.tokens, name, self.fill_id(name), score, output)

    def attention_view(self, example: Example, target: Target, granularity: str = "word") -> AttentionView:
        """Return every layer's attention maps, in the graph of the target's probability."""
        tok: Tokenized = example.state
        ids = torch.tensor([tok.ids], device=self.device)
        with eager_attention(self.model), torch.enable_grad():
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise InputError(f"{self.info.architecture} returned no attention weights")
        output = select_output(out.logits, target.index, "probability", self.head)[0]
        if not output.requires_grad:
            raise MethodError(f"attention relevance needs gradients and {NO_GRADIENT}")
        units = self.units(tok, granularity)
        # An own model may attend over k positions it adds in front inside forward (a learnt
        # [CLS]; torch_shim checks the maps): they are tokens of the maps, never features.
        k = out.attentions[0].shape[-1] - len(tok.tokens)
        tokens = (*(f"[model's own {i}]" for i in range(k)), *tok.tokens)
        return AttentionView(
            attentions=list(out.attentions),
            output=output,
            # the row the classifier answers from: [CLS] / <s> for encoders, the last non-pad token
            # for decoder-only classifiers (GPT-2, Llama ... *ForSequenceClassification)
            query=answer_rows(self, example, target, out.attentions)[0],
            tokens=tokens,
            features=units.names,
            feature_tokens=tuple(tuple(p + k for p in g) for g in units.tokens) if k > 0 else units.tokens,
            granularity=units.granularity,
        )


def _others(baselines: tuple[str, ...]) -> str:
    fills = [b for b in baselines if b != "drop"]
    return f" ({', '.join(fills)})" if fills else " (this tokenizer has none)"


def _unused_id(rows: Sequence[Sequence[int] | np.ndarray], preferred: int, vocab_size: int) -> int:
    """Return `preferred` if no row holds it, else the smallest id below `vocab_size` that none holds."""
    used = {int(t) for r in rows for t in r}
    if preferred not in used:
        return preferred
    return next((i for i in range(max(vocab_size, len(used) + 1)) if i not in used), preferred)


def _first_id(tokenizer: Any, names: tuple[str, ...], default: int) -> int:
    for n in names:
        v = getattr(tokenizer, n, None)
        if v is not None:
            return int(v)
    return default
