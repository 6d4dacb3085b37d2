"""Causal LM words: a prompt and its continuation regrouped into words, and a context's features."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import InputError
from .lm_sequence import Generation
from .token_names import REPLACEMENT, readable_tokens, token_label
from .words import _SPACE_MARKERS, Tokenized, Units, tokenize


def context_units(tokenizer: Any, gen: Generation, length: int, granularity: str) -> Units:
    """Return the features of the first `length` tokens: words (cut at the end) or non-special tokens."""
    tok = gen.tok
    if granularity == "token":
        pos = tuple(t for t in range(length) if not tok.special[t])
        return Units(tuple(tok.tokens[t] for t in pos), tuple((t,) for t in pos), "token")
    if granularity != "word":
        raise InputError(f"unknown granularity {granularity!r}: use word or token")
    names, groups = [], []
    for w, toks in enumerate(tok.word_tokens):
        inside = tuple(t for t in toks if t < length)
        if not inside:
            continue
        if len(inside) == len(toks):
            names.append(tok.words[w])
        else:  # a word the target token itself continues: only its pieces so far are context
            names.append(group_name(tokenizer, [tok.ids[t] for t in inside]))
        groups.append(inside)
    return Units(tuple(names), tuple(groups), "word")


def strip_trailing_special(tok: Tokenized, count: int | None = None) -> Tokenized:
    """Return `tok` without its trailing special tokens (all of them, or the last `count`)."""
    n = len(tok.ids)
    while n > 0 and tok.special[n - 1] and (count is None or len(tok.ids) - n < count):
        n -= 1
    if n == len(tok.ids):
        return tok
    return Tokenized(
        ids=tok.ids[:n],
        tokens=tok.tokens[:n],
        special=tok.special[:n],
        word_of_token=tok.word_of_token[:n],
        words=tok.words,
        word_tokens=tok.word_tokens,
        truncated_from=tok.truncated_from,
    )


def continuation_ids(tokenizer: Any, prompt: str, prompt_tok: Tokenized, text: str, added: int) -> list[int]:
    """Return the token ids of a given continuation, as the prompt + continuation text tokenises.

    `added` is how many special tokens the tokenizer appends to any text (e.g. an end-of-text
    mark): those are dropped, while special tokens written in the text itself are kept.
    """
    full = strip_trailing_special(tokenize(tokenizer, prompt + text, None), added)
    n = len(prompt_tok.ids)
    if full.ids[:n] == prompt_tok.ids:
        return list(full.ids[n:])
    # The prompt's last piece merges with the continuation (e.g. "cap" + "ital"): keep the
    # prompt's own tokens, which the model saw, and tokenise the continuation on its own.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def decoded_labels(tokenizer: Any, ids: Sequence[int], start: int) -> tuple[list[str], str]:
    """Return each token's text from `start` on as decoded in place (with its space), and their text."""
    texts = [tokenizer.decode(list(ids[:i])) for i in range(start, len(ids) + 1)]
    labels = []
    for k, i in enumerate(range(start, len(ids))):
        before, after = texts[k], texts[k + 1]
        # SentencePiece decoders drop a token's leading space when decoded alone; the difference
        # of two prefixes keeps it. Partial UTF-8 bytes break the prefix property: decode alone.
        label = after[len(before) :] if after.startswith(before) else tokenizer.decode([ids[i]])
        # A byte of a character that is not finished (or not valid) decodes to nothing or to
        # U+FFFD, in place and alone: it is named by its byte, <0xNN>, never '' or '\ufffd'.
        labels.append(label if label and REPLACEMENT not in label else token_label(tokenizer, ids[i]))
    whole = texts[-1][len(texts[0]) :] if texts[-1].startswith(texts[0]) else tokenizer.decode(list(ids[start:]))
    if REPLACEMENT in whole:  # a character left unfinished (or invalid): spelt as its steps are
        whole = "".join(labels)
    return labels, whole


def group_sequence(
    tokenizer: Any, prompt: str, prompt_tok: Tokenized, cont: Sequence[int], labels: Sequence[str], text: str, added: int
) -> Tokenized:
    """Return the Tokenized whole sequence, its words grouped across prompt and continuation."""
    ids = tuple(prompt_tok.ids) + tuple(cont)
    full = strip_trailing_special(tokenize(tokenizer, prompt + text, None), added)
    if full.ids == ids:  # the text re-tokenises to the same ids: use its offset-based words
        return full
    # Otherwise extend the prompt's words with the continuation's pieces: a piece starts a new
    # word at a space marker or a leading blank, and otherwise continues the word before it.
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    tokens = list(prompt_tok.tokens) + readable_tokens(tokenizer, tokenizer.convert_ids_to_tokens(list(cont)))
    special = list(prompt_tok.special) + [i in special_ids for i in cont]
    groups = [list(w) for w in prompt_tok.word_tokens]
    # The continuation's first piece may continue the prompt's last word ("cap" + "ital").
    open_word = bool(groups) and groups[-1][-1] == len(prompt_tok.ids) - 1 and not prompt[-1:].isspace()
    blank_pending = False
    for k, t in enumerate(range(len(prompt_tok.ids), len(ids))):
        if special[t]:
            open_word = False
            continue
        label, piece = labels[k], tokens[t] or ""
        starts = piece.startswith(_SPACE_MARKERS) or label[:1].isspace()
        if not open_word or (starts and not blank_pending):
            groups.append([t])
        else:
            groups[-1].append(t)
        blank_pending = not label.strip()  # a lone space joins the word that follows it
        open_word = True
    if groups and len(groups) > 1 and not tokenizer.decode([ids[t] for t in groups[-1]]).strip():
        groups[-2].extend(groups.pop())
    word_of_token = [-1] * len(ids)
    for w, g in enumerate(groups):
        for t in g:
            word_of_token[t] = w
    words = tuple(_word_name(tokenizer, ids, prompt_tok, w, g) for w, g in enumerate(groups))
    return Tokenized(
        ids=ids,
        tokens=tuple(tokens),
        special=tuple(special),
        word_of_token=tuple(word_of_token),
        words=words,
        word_tokens=tuple(tuple(g) for g in groups),
    )


def _word_name(tokenizer: Any, ids: Sequence[int], prompt_tok: Tokenized, w: int, group: list[int]) -> str:
    if w < len(prompt_tok.word_tokens) and tuple(group) == prompt_tok.word_tokens[w]:
        return prompt_tok.words[w]  # untouched prompt word: keep its offset-based text
    return group_name(tokenizer, [ids[t] for t in group])


def group_name(tokenizer: Any, ids: Sequence[int]) -> str:
    """Return the name of a word made of token `ids`: its text (partial characters as <0xNN>
    bytes), or, for a word of only white space (e.g. generated spaces), that space made visible."""
    text = tokenizer.decode(list(ids))
    if REPLACEMENT in text:  # a partial character: each token by its text or its bytes
        text = "".join(token_label(tokenizer, i) for i in ids)
    return text.strip() or _visible_blank(text) or "".join(readable_tokens(tokenizer, tokenizer.convert_ids_to_tokens(list(ids))))


def _visible_blank(text: str) -> str:
    """Return white space made visible (a word of only blanks, e.g. generated spaces): ␣ ⏎ ⇥."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥").replace("\r", "")
