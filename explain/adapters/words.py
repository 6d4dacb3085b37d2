"""Tokenisation with word grouping: sub-word tokens back into the words a reader sees.

A word is a run of non-special tokens with no white space between them in the original
text, so "unwatchable" split into un/##watch/##able is one word, and GPT-2's byte-level
pieces ("Ġmovie") start a new word at their leading space. Offsets from a fast tokenizer are
used when there are any; tokenizers without offsets fall back on the pieces' own markers
(WordPiece "##", SentencePiece "▁", byte-level "Ġ").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .token_names import readable_tokens

_SPACE_MARKERS = ("Ġ", "▁", "Ċ", " ")


@dataclass(frozen=True)
class Tokenized:
    """Token ids of a text with each token's word (or -1 for special tokens)."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    word_of_token: tuple[int, ...]
    words: tuple[str, ...]
    word_tokens: tuple[tuple[int, ...], ...]  # token positions of each word
    truncated_from: int | None = None  # token count before truncation, when truncated


def tokenize(tokenizer: Any, text: str, max_length: int | None, add_special_tokens: bool = True) -> Tokenized:
    """Return the Tokenized form of `text`, truncated to `max_length` tokens if longer."""
    enc = tokenizer(
        text,
        add_special_tokens=add_special_tokens,
        return_special_tokens_mask=True,
        return_offsets_mapping=bool(getattr(tokenizer, "is_fast", False)),
        truncation=False,
        verbose=False,
    )
    ids = list(enc["input_ids"])
    special = [bool(s) for s in enc["special_tokens_mask"]]
    offsets = list(enc["offset_mapping"]) if "offset_mapping" in enc else None
    truncated_from = None
    if max_length is not None and len(ids) > max_length:
        truncated_from = len(ids)
        ids, special, offsets = _truncate(tokenizer, ids, special, offsets, max_length)
    tokens = readable_tokens(tokenizer, tokenizer.convert_ids_to_tokens(ids))  # byte-level: no mojibake
    if offsets is not None and _offsets_usable(offsets, special):
        starts = _word_starts_from_offsets(text, offsets, special)
        spans = offsets
    else:
        starts = _word_starts_from_markers(tokens, special)
        spans = None
    word_tokens: list[list[int]] = []
    for t, is_special in enumerate(special):
        if is_special:
            continue
        if starts[t] or not word_tokens:
            word_tokens.append([])
        word_tokens[-1].append(t)
    # Blank groups fold into the next word, so each token's word is known only after the merge.
    word_tokens = _merge_blank(word_tokens, [_word_text(text, tokenizer, ids, w, spans) for w in word_tokens])
    words = [_word_text(text, tokenizer, ids, toks, spans) for toks in word_tokens]
    word_of_token = [-1] * len(ids)
    for w, toks in enumerate(word_tokens):
        for t in toks:
            word_of_token[t] = w
    return Tokenized(
        ids=tuple(ids),
        tokens=tuple(tokens),
        special=tuple(special),
        word_of_token=tuple(word_of_token),
        words=tuple(words),
        word_tokens=tuple(tuple(w) for w in word_tokens),
        truncated_from=truncated_from,
    )


@dataclass(frozen=True)
class Units:
    """The features of a text at one granularity: names and the token positions of each."""

    names: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]
    granularity: str


def units(tok: Tokenized, granularity: str) -> Units:
    """Return the features of a tokenised text: whole words, or raw non-special tokens."""
    if granularity == "word":
        return Units(tok.words, tok.word_tokens, "word")
    if granularity == "token":
        pos = tuple(t for t, s in enumerate(tok.special) if not s)
        return Units(tuple(tok.tokens[t] for t in pos), tuple((t,) for t in pos), "token")
    raise InputError(f"unknown granularity {granularity!r}: use word or token")


def _merge_blank(groups: list[list[int]], texts: list[str]) -> list[list[int]]:
    """Fold tokens that are only white space (e.g. a lone 'Ġ' at a double space) into the next word."""
    out: list[list[int]] = []
    carry: list[int] = []
    for g, t in zip(groups, texts):
        if not t.strip():
            carry.extend(g)
            continue
        out.append(carry + g)
        carry = []
    if carry:
        if out:
            out[-1].extend(carry)
        else:
            out.append(carry)
    return out


def _truncate(
    tokenizer: Any, ids: list[int], special: list[bool], offsets: list[Any] | None, max_length: int
) -> tuple[list[int], list[bool], list[Any] | None]:
    """Keep the leading special tokens, as many content tokens as fit, and the trailing ones."""
    lead = 0
    while lead < len(ids) and special[lead]:
        lead += 1
    trail = 0
    while trail < len(ids) - lead and special[len(ids) - 1 - trail]:
        trail += 1
    keep = max(0, max_length - lead - trail)
    idx = list(range(lead + keep)) + list(range(len(ids) - trail, len(ids)))
    return (
        [ids[i] for i in idx],
        [special[i] for i in idx],
        [offsets[i] for i in idx] if offsets is not None else None,
    )


def _offsets_usable(offsets: list[Any], special: list[bool]) -> bool:
    content = [o for o, s in zip(offsets, special) if not s]
    return bool(content) and any(e > b for b, e in content)


def _word_starts_from_offsets(text: str, offsets: list[Any], special: list[bool]) -> list[bool]:
    starts: list[bool] = []
    prev_end = None
    for (b, e), is_special in zip(offsets, special):
        if is_special:
            starts.append(False)
            continue
        # A span may include its leading space (GPT-2 style); the word starts after it.
        stripped = b
        while stripped < e and text[stripped].isspace():
            stripped += 1
        starts.append(prev_end is None or stripped > prev_end or b > prev_end)
        if e > b:
            prev_end = e
    return starts


def _word_starts_from_markers(tokens: list[str], special: list[bool]) -> list[bool]:
    starts: list[bool] = []
    first = True
    for tok, is_special in zip(tokens, special):
        if is_special:
            starts.append(False)
            continue
        tok = tok or ""
        if first:
            starts.append(True)
        elif tok.startswith("##"):
            starts.append(False)
        else:
            starts.append(tok.startswith(_SPACE_MARKERS) or not _uses_space_markers(tokens))
        first = False
    return starts


def _uses_space_markers(tokens: list[str]) -> bool:
    return any(t and t.startswith(_SPACE_MARKERS) for t in tokens) and not any(
        t and t.startswith("##") for t in tokens
    )


def _word_text(text: str, tokenizer: Any, ids: list[int], toks: list[int], spans: list[Any] | None) -> str:
    if spans is not None:
        b = min(spans[t][0] for t in toks)
        e = max(spans[t][1] for t in toks)
        word = text[b:e].strip()
        if word:
            return word
    return tokenizer.decode([ids[t] for t in toks]).strip()
