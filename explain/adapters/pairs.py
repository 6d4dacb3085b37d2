"""Sentence pairs for BERT-family classifiers (NLI, cross-encoders): two segments, one input.

A pair is tokenised as the model was trained on it: the tokenizer's own pair encoding
(BERT: [CLS] a [SEP] b [SEP] with token types 0/1; RoBERTa: <s> a </s></s> b </s>). Its
features are the words (or tokens) of both segments, in order, each marked with its segment
(0: `text`, 1: `text_pair`) in `Explanation.extras["segment"]`. Removing a word means what it
means for a single text (its tokens become the removal's fill token, or are dropped); special
tokens, the separators included, always stay, and every kept token keeps its token type.

`PairTextClassifierAdapter` is a `TextClassifierAdapter` that also takes pairs: a dict
``{"text": ..., "text_pair": ...}``, a 2-tuple of strings, or a text with ``text_pair=`` as a
prepare option. A single text goes the parent's way unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..results.explanation import InputRecord, Target
from . import textview
from .token_names import readable_tokens
from .answer_row import answer_rows
from .attention_impl import eager_attention
from .base import AttentionView, Example, GradientView, PerturbationView, select_output, transform
from .text import TextClassifierAdapter
from .words import Tokenized, Units, tokenize, units

PAIR_KEYS = ("text", "text_pair")


@dataclass(frozen=True)
class PairTokenized(Tokenized):
    """A tokenised pair: Tokenized over both segments, with each token's type and each word's segment."""

    type_ids: tuple[int, ...] = ()  # (T,) the token types the model is given (zeros where it takes none)
    token_segment: tuple[int, ...] = ()  # (T,) 0 for `text`, 1 for `text_pair`, -1 for special tokens
    word_segment: tuple[int, ...] = ()  # (W,) the segment of each word
    text_pair: str = ""


def split_pair(raw: Any, text_pair: str | None, index: int) -> tuple[Any, str | None]:
    """Return (text, text_pair or None) from a raw input: a string, a {"text", "text_pair"} dict or a 2-tuple."""
    if isinstance(raw, dict):
        unknown = set(raw) - set(PAIR_KEYS)
        if unknown or "text" not in raw:
            raise InputError(f"input {index}: a pair is {{'text': ..., 'text_pair': ...}}, got the keys {sorted(raw)}")
        pair = raw.get("text_pair")
        if pair is not None and not isinstance(pair, str):
            raise InputError(f"input {index}: text_pair is a {type(pair).__name__}, not a text")
        if pair is not None and text_pair is not None and pair != text_pair:
            raise InputError(f"input {index}: two text_pair values given (in the input and as an option)")
        return raw["text"], pair if pair is not None else text_pair
    if isinstance(raw, (tuple, list)):
        if len(raw) != 2 or not all(isinstance(x, str) for x in raw):
            raise InputError(f"input {index}: a pair is two texts, got {len(raw)} items")
        return raw[0], raw[1]
    return raw, text_pair


def tokenize_pair(tokenizer: Any, text: str, text_pair: str, max_length: int | None) -> PairTokenized:
    """Return the pair's tokens as the tokenizer encodes the pair, grouped into each segment's words.

    Each segment is grouped into words on its own (words.tokenize); the pair encoding's
    non-special tokens must be the two segments' tokens in order (as Hugging Face builds pairs),
    else the pair is refused. Over `max_length`, whole words are cut from the end of the longer
    segment until it fits.
    """
    a = tokenize(tokenizer, text, None, add_special_tokens=False)
    b = tokenize(tokenizer, text_pair, None, add_special_tokens=False)
    ids, special, types = _encode(tokenizer, text, text_pair)
    full = len(ids)
    while max_length is not None and len(ids) > max_length:
        cut_a = len(a.ids) >= len(b.ids)
        if (cut_a and len(a.words) < 2) or (not cut_a and len(b.words) < 2):
            cut_a = not cut_a
            if (cut_a and len(a.words) < 2) or (not cut_a and len(b.words) < 2):
                raise InputError(f"the pair does not fit {max_length} tokens even with one word per segment")
        if cut_a:
            text = _prefix(text, a.words, len(a.words) - 1)
            a = tokenize(tokenizer, text, None, add_special_tokens=False)
        else:
            text_pair = _prefix(text_pair, b.words, len(b.words) - 1)
            b = tokenize(tokenizer, text_pair, None, add_special_tokens=False)
        ids, special, types = _encode(tokenizer, text, text_pair)
    content = [t for t, s in enumerate(special) if not s]
    if [ids[t] for t in content] != list(a.ids) + list(b.ids):
        raise InputError("the tokenizer encodes this pair differently from its two texts; pairs need a BERT-style pair encoding")
    words = a.words + b.words
    word_tokens = tuple(tuple(content[p] for p in w) for w in a.word_tokens) + tuple(
        tuple(content[len(a.ids) + p] for p in w) for w in b.word_tokens
    )
    word_of_token = [-1] * len(ids)
    for w, toks in enumerate(word_tokens):
        for t in toks:
            word_of_token[t] = w
    token_segment = [-1] * len(ids)
    for k, t in enumerate(content):
        token_segment[t] = 0 if k < len(a.ids) else 1
    return PairTokenized(
        ids=tuple(ids),
        tokens=tuple(readable_tokens(tokenizer, tokenizer.convert_ids_to_tokens(ids))),
        special=tuple(special),
        word_of_token=tuple(word_of_token),
        words=words,
        word_tokens=word_tokens,
        truncated_from=full if len(ids) < full else None,
        type_ids=tuple(types),
        token_segment=tuple(token_segment),
        word_segment=(0,) * len(a.words) + (1,) * len(b.words),
        text_pair=text_pair,
    )


def _encode(tokenizer: Any, text: str, text_pair: str) -> tuple[list[int], list[bool], list[int]]:
    """Return (ids, special mask, token types) of the tokenizer's own pair encoding."""
    enc = tokenizer(
        text,
        text_pair,
        add_special_tokens=True,
        return_special_tokens_mask=True,
        truncation=False,
        verbose=False,
    )
    ids = list(enc["input_ids"])
    special = [bool(s) for s in enc["special_tokens_mask"]]
    types = list(enc["token_type_ids"]) if "token_type_ids" in enc else [0] * len(ids)
    if not (len(ids) == len(special) == len(types)):
        raise InputError("the tokenizer's pair encoding gives ids, special-token mask and token types of different lengths")
    return ids, special, types


def _prefix(text: str, words: Sequence[str], n: int) -> str:
    """Return `text` up to the end of its first `n` words (found in order; the whole text if one is not)."""
    end = 0
    for w in words[:n]:
        at = text.find(w, end)
        if at < 0:
            return " ".join(words[:n])
        end = at + len(w)
    return text[:end]


def unit_segments(tok: PairTokenized, u: Units) -> list[int]:
    """Return the segment (0 or 1) of each feature."""
    return [tok.token_segment[ts[0]] for ts in u.tokens]


def segment_linkage(segments: Sequence[int]) -> np.ndarray:
    """Return a balanced hierarchy over features in order that merges each segment's features first.

    shap's partition explainer then splits the pair into its two segments at the top, and
    neighbouring words within a segment below (as contiguous_linkage does for one text).
    """
    n = len(segments)
    rows: list[list[float]] = []
    next_id = n

    def merge(clusters: list[tuple[int, int, float]]) -> tuple[int, int, float]:
        nonlocal next_id
        while len(clusters) > 1:
            merged = []
            for j in range(0, len(clusters) - 1, 2):
                (a, sa, ha), (b, sb, hb) = clusters[j], clusters[j + 1]
                h = max(ha, hb) + 1.0
                rows.append([a, b, h, sa + sb])
                merged.append((next_id, sa + sb, h))
                next_id += 1
            if len(clusters) % 2:
                merged.append(clusters[-1])
            clusters = merged
        return clusters[0]

    groups: list[list[tuple[int, int, float]]] = []
    for i, s in enumerate(segments):
        if not groups or segments[i - 1] != s:
            groups.append([])
        groups[-1].append((i, 1, 0.0))
    if n >= 2:
        merge([merge(g) for g in groups])
    return np.asarray(rows, dtype=float).reshape(-1, 4)


class PairTextClassifierAdapter(TextClassifierAdapter):
    """A text classifier that also explains sentence pairs (features from both segments)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, info: Any, runner: Any) -> None:
        super().__init__(model, tokenizer, info, runner)
        forward = getattr(model, "forward", None)
        try:
            params = inspect.signature(forward).parameters if forward is not None else {}
        except (TypeError, ValueError):
            params = {}
        # token types only for models that take them and tokenizers that make them
        self.takes_types = "token_type_ids" in params and "token_type_ids" in getattr(tokenizer, "model_input_names", ())

    # ---- inputs -------------------------------------------------------------------------
    def prepare(
        self,
        raw: Any,
        index: int,
        max_length: int | None = None,
        truncate: bool = True,
        text_pair: str | None = None,
        **options: Any,
    ) -> Example:
        """Return the Example of a text or a pair (dict, 2-tuple, or a text with `text_pair`)."""
        text, pair = split_pair(raw, text_pair, index)
        if pair is None:
            return super().prepare(text, index, max_length=max_length, truncate=truncate, **options)
        for name, value in (("text", text), ("text_pair", pair)):
            if not isinstance(value, str):
                raise InputError(f"input {index}: {name} is a {type(value).__name__}, not a text")
            if not value.strip():
                raise InputError(f"input {index}: the pair's {name} is empty")
        tok, limit = self._within_limit(lambda limit: tokenize_pair(self.tokenizer, text, pair, limit), index, max_length, truncate, "pair")
        probs = self.predict_pairs([(np.asarray(tok.ids), np.asarray(tok.type_ids))])[0]
        pred = int(np.argmax(probs))
        note = None
        if tok.truncated_from is not None:
            note = f"truncated from {tok.truncated_from} to {len(tok.ids)} tokens (model maximum {limit}), words cut from the longer segment"
        record = pair_record(
            index=index,
            text=text,
            text_pair=pair,
            prediction=Target(index=pred, label=self.labels[pred], probability=float(probs[pred])),
            note=note,
            probabilities=tuple(float(p) for p in probs),  # every class, in label order
        )
        return Example(index=index, record=record, probs=probs, state=tok)

    # ---- batched forwards ---------------------------------------------------------------
    def pair_logits_of(self, rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
        """Return (B, C) logits for (token ids, token types) rows, right-padded to the longest."""
        width = max(len(r[0]) for r in rows)
        configured = getattr(getattr(self.model, "config", None), "pad_token_id", None)
        pad = self.pad_id if configured is None else int(configured)  # what the model reads as padding
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, t) in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
            types[i, : len(t)] = torch.as_tensor(t, dtype=torch.long)
            mask[i, : len(r)] = 1
        kwargs = {"token_type_ids": types.to(self.device)} if self.takes_types else {}
        return self.model(**self.id_inputs(ids.to(self.device)), attention_mask=mask.to(self.device), **kwargs).logits

    def predict_pairs(self, rows: Sequence[tuple[np.ndarray, np.ndarray]], output: str = "probability") -> np.ndarray:
        """Return (B, C) outputs for (token ids, token types) rows through the batched runner (unique rows once)."""
        unique: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        keys = [unique.setdefault((tuple(int(x) for x in r), tuple(int(x) for x in t)), len(unique)) for r, t in rows]
        distinct = [(np.asarray(r), np.asarray(t)) for r, t in unique]
        logits = self.runner.map(distinct, lambda b: self.pair_logits_of(b), key=lambda r: len(r[0]), share="pair-logits")
        return transform(logits, output, self.head).numpy()[np.asarray(keys)]

    # ---- views --------------------------------------------------------------------------
    def _type_kwargs(self, tok: PairTokenized, batch: int = 1) -> dict[str, torch.Tensor]:
        if not self.takes_types:
            return {}
        return {"token_type_ids": torch.tensor([tok.type_ids], device=self.device).expand(batch, -1)}

    def gradient_view(
        self, example: Example, target: Target, granularity: str = "word", output: str | None = None, **options: Any
    ) -> GradientView:
        """Return the pair's embeddings, the all-removed pair as baseline, and the forward (token types kept)."""
        tok = example.state
        if not isinstance(tok, PairTokenized):
            return super().gradient_view(example, target, granularity=granularity, output=output, **options)
        output = output or "probability"
        name = self.resolve_baseline(options, gradient=True)
        inputs, base, mask = self._embedded(tok, name)

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            out = self.model(inputs_embeds=x, attention_mask=mask.expand(x.shape[0], -1), **self._type_kwargs(tok, x.shape[0]))
            return select_output(out.logits, target.index, output, self.head)

        u = units(tok, granularity)
        view = textview.gradient_view(inputs, base, forward, u, tok.tokens, name, output)
        view.extras["segment"] = unit_segments(tok, u)
        return view

    def perturbation_view(
        self, example: Example, target: Target, granularity: str = "word", output: str | None = None, **options: Any
    ) -> PerturbationView:
        """Return both segments' words as features; removed ones are filled or dropped, token types kept."""
        tok = example.state
        if not isinstance(tok, PairTokenized):
            return super().perturbation_view(example, target, granularity=granularity, output=output, **options)
        output = output or "probability"
        name = self.resolve_baseline(options, gradient=False)
        fill = self.fill_id(name)
        u = units(tok, granularity)
        ids_a, types_a = np.asarray(tok.ids), np.asarray(tok.type_ids)
        owner = textview.unit_of_position(len(ids_a), u)
        outside = owner < 0

        def evaluate(keep: np.ndarray) -> np.ndarray:
            keep = np.asarray(keep, dtype=bool).reshape(-1, len(u.names))
            kept = outside[None, :] | keep[:, np.maximum(owner, 0)]  # (B, T) is this token kept?
            if fill is None:  # dropped tokens go with their token types
                rows = [(ids_a[k], types_a[k]) for k in kept]
            else:
                rows = [(np.where(k, ids_a, fill), types_a) for k in kept]
            return self.predict_pairs(rows, output)[:, target.index]

        segments = unit_segments(tok, u)
        return PerturbationView(
            features=u.names,
            evaluate=evaluate,
            clustering=segment_linkage(segments),
            expand=lambda values: np.asarray(values, dtype=np.float32),
            granularity=u.granularity,
            mask=name,
            output=output,
            sampling="lime-text",
            extras={**textview.token_extras(tok.tokens, u), "segment": segments},
        )

    def attention_view(self, example: Example, target: Target, granularity: str = "word") -> AttentionView:
        """Return every layer's attention maps over the pair (token types kept), in the graph of the target."""
        tok = example.state
        if not isinstance(tok, PairTokenized):
            return super().attention_view(example, target, granularity)
        ids = torch.tensor([tok.ids], device=self.device)
        with eager_attention(self.model), torch.enable_grad():
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True, **self._type_kwargs(tok))
        if not out.attentions or out.attentions[0] is None:
            raise InputError(f"{self.info.architecture} returned no attention weights")
        u = units(tok, granularity)
        return AttentionView(
            attentions=list(out.attentions),
            output=select_output(out.logits, target.index, "probability", self.head)[0],
            query=answer_rows(self, example, target, out.attentions)[0],  # [CLS] / <s> for encoders
            tokens=tok.tokens,
            features=u.names,
            feature_tokens=u.tokens,
            granularity=u.granularity,
        )


def pair_record(
    *, index: int, text: str, text_pair: str, prediction: Target, note: str | None, probabilities: tuple[float, ...]
) -> InputRecord:
    """Return the InputRecord of a pair: both texts, the prediction and every class's probability."""
    return InputRecord(index=index, kind="text", text=text, text_pair=text_pair, prediction=prediction, note=note,
                       probabilities=probabilities)


def pair_inputs(texts: Any, text_pair: Any) -> list[Any]:
    """Return pair inputs from texts and their second texts (the API's `text_pair=`, the CLI's --text-pair).

    One text and one second text make one pair; lists pair up in order and must be equally
    long. `text_pair` None returns the texts as they are.
    """
    if text_pair is None:
        return [texts] if isinstance(texts, str) else list(texts)
    firsts = [texts] if isinstance(texts, str) else list(texts)
    seconds = [text_pair] if isinstance(text_pair, str) else list(text_pair)
    if len(firsts) != len(seconds):
        raise InputError(f"{len(firsts)} texts but {len(seconds)} text_pair values: give one second text per text")
    bad = [x for x in firsts + seconds if not isinstance(x, str)]
    if bad:
        raise InputError(f"text_pair pairs texts: got a {type(bad[0]).__name__}")
    return [{"text": a, "text_pair": b} for a, b in zip(firsts, seconds)]
