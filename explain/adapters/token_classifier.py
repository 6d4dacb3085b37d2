"""Adapter for token classifiers (`*ForTokenClassification`, e.g. NER): one word's label at a time.

A token classifier gives every token a class. Explaining it means explaining one word's
label: the output is the class probability (or logit) at the word's first token, as the
Hugging Face NER pipelines read a word's label, and the features are every word of the text,
the explained word included. Seen from one word, the model is a text classifier whose answer
is read at that word's row instead of [CLS], so this adapter presents the "text-classifier"
family and every text method (IG, SHAP, LIME, ablation, attention) works unchanged, one
Explanation per (word, label).

Targets (`targets(example, spec)`; the same rule from the API, the CLI and input files):
- None: every word predicted as something other than the outside label ("O"), each with its
  predicted label; without an "O" label, every word;
- "word:N": word N (0-based, negative counts from the end) with its predicted label;
  "word:N=LABEL": word N with LABEL (a label name, '#K' an index, as for classifiers);
  "words" / "word:all": every word with its predicted label;
- any classifier spec (a label, '#K', 'all'): that class at each word the default picks;
- an input given as {"text": ..., "word": N or [N, ...]} sets that input's default words.

The Target's `position` is the explained word's first token (the answering row);
explanations also carry `extras["target_word"]` (its index among the features) and
`extras["target_word_text"]`.

Removals are the text classifier's (mask, unk, pad, drop). Under drop the answering row moves
left by the tokens dropped before it (it is followed), and the explained word itself, when
removed, is masked instead of dropped (its label needs its row): so LIME, which drops words by
default, still scores the word itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError, TargetError
from ..results.explanation import InputRecord, Target
from . import textview
from .attention_impl import eager_attention
from .base import AttentionView, Example, GradientView, PerturbationView, contiguous_linkage, select_output, transform
from .targets import as_list, class_indices, strip_prefix
from .text import TextClassifierAdapter
from .words import Tokenized

OUTSIDE = ("o", "outside")
WORD_PREFIX = "word:"
EVERY_WORD = ("words", "word:all")


@dataclass(frozen=True, eq=False)
class TokenState(Tokenized):
    """A tokenised text with the model's class probabilities at each word's first token."""

    word_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (W, C)
    default_words: tuple[int, ...] = ()  # the words explained when no word is named

    @property
    def tok(self) -> Tokenized:
        """Return the tokenised text itself (this state is one)."""
        return self


def is_token_classifier(name: str) -> bool:
    """Return True for a Hugging Face token-classification class name (e.g. BertForTokenClassification)."""
    return name.endswith("ForTokenClassification")


def outside_index(labels: Sequence[str]) -> int | None:
    """Return the index of the outside label ("O", any case, or "outside"), or None."""
    for i, lab in enumerate(labels):
        if lab.strip().lower() in OUTSIDE:
            return i
    return None


class TokenClassifierAdapter(TextClassifierAdapter):
    """A token classifier explained one word's label at a time (see the module docstring)."""

    # ---- inputs -------------------------------------------------------------------------
    def prepare(self, raw: Any, index: int, max_length: int | None = None, truncate: bool = True, **_: Any) -> Example:
        """Tokenise one text (or {"text": ..., "word": N}) and compute every word's class probabilities once."""
        words_given: Any = None
        if isinstance(raw, dict):
            unknown = set(raw) - {"text", "word"}
            if unknown or "text" not in raw:
                raise InputError(f"input {index}: a token-classifier input is a text or {{'text': ..., 'word': N}}, got the keys {sorted(raw)}")
            raw, words_given = raw["text"], raw.get("word")
        tok, limit = self._tokenized(raw, index, max_length, truncate)
        probs = self.token_outputs([list(tok.ids)])[0]  # (T, C)
        word_probs = probs[[w[0] for w in tok.word_tokens]]  # (W, C) at each word's first token
        if words_given is not None:
            default = tuple(self._word(tok, w, index) for w in as_list(words_given))
        else:
            default = self._entity_words(word_probs)
        state = TokenState(**{f.name: getattr(tok, f.name) for f in fields(Tokenized)}, word_probs=word_probs, default_words=default)
        first = default[0] if default else 0
        notes = []
        if tok.truncated_from is not None:
            notes.append(f"truncated from {tok.truncated_from} to {len(tok.ids)} tokens (model maximum {limit})")
        entities = [f"{tok.words[w]}={self.labels[int(np.argmax(word_probs[w]))]}" for w in self._entity_words(word_probs)]
        notes.append("predicted: " + (", ".join(entities) if entities else "no word other than 'O'"))
        if not default:
            notes.append("nothing to explain by default: name a word with word:N (--target-word N)")
        record = InputRecord(
            index=index,
            kind="text",
            text=raw,
            prediction=self._target(state, first, int(np.argmax(word_probs[first]))) if default else None,
            note="; ".join(notes),
        )
        return Example(index=index, record=record, probs=word_probs[first], state=state)

    def _entity_words(self, word_probs: np.ndarray) -> tuple[int, ...]:
        """Return the words predicted as anything but the outside label (every word without one)."""
        out = outside_index(self.labels)
        pred = np.argmax(word_probs, axis=1)
        return tuple(int(w) for w in range(len(pred)) if out is None or pred[w] != out)

    @staticmethod
    def _word(tok: Tokenized, w: Any, index: int | None = None) -> int:
        """Return word `w` (0-based; negative from the end) of the text, or raise TargetError."""
        where = f"input {index}: " if index is not None else ""
        if isinstance(w, bool) or not isinstance(w, (int, np.integer, str)):
            raise TargetError(f"{where}word {w!r} is not a word number")
        try:
            n = int(w)
        except ValueError:
            raise TargetError(f"{where}word {w!r} is not a whole number") from None
        count = len(tok.words)
        if not -count <= n < count:
            raise TargetError(f"{where}word {n} is out of range: the text has {count} words (0..{count - 1})")
        return n % count

    # ---- targets ------------------------------------------------------------------------
    def check_target(self, spec: Any) -> None:
        """Raise TargetError now if `spec` is not understood or names a label the model lacks."""
        for s in as_list(spec) if spec is not None else []:
            self._parse(s)

    def _parse(self, spec: Any) -> tuple[str | None, Any]:
        """Return (word part or None, class part or None) of one spec; check the class part."""
        if isinstance(spec, str):
            text = spec.strip()
            if text.lower() in EVERY_WORD:
                return "all", None
            rest = strip_prefix(text, (WORD_PREFIX,))
            if rest is not None:
                word, _, label = rest.partition("=")
                if not word.strip():
                    raise TargetError(f"target {spec!r}: give a word number, as word:3 or word:3=LABEL")
                if label:
                    class_indices(label.strip(), self.labels)
                return word.strip(), (label.strip() or None)
        class_indices(spec, self.labels)
        return None, spec

    def targets(self, example: Example, spec: Any = None) -> list[Target]:
        """Return one Target per (word, class) the spec names (see the module docstring)."""
        state: TokenState = example.state
        out: list[Target] = []
        for s in as_list(spec) if spec is not None else [None]:
            word, label = self._parse(s) if s is not None else (None, None)
            if word == "all":
                words: Sequence[int] = range(len(state.tok.words))
            elif word is not None:
                words = [self._word(state.tok, word, example.index)]
            else:
                words = state.default_words
            for w in words:
                classes = class_indices(label, self.labels) if label is not None else [int(np.argmax(state.word_probs[w]))]
                for c in classes:
                    t = self._target(state, w, c)
                    if t not in out:
                        out.append(t)
        return out

    def _target(self, state: Any, word: int, index: int) -> Target:  # type: ignore[override]
        return Target(
            index=index,
            label=self.labels[index],
            probability=float(state.word_probs[word, index]),
            position=state.tok.word_tokens[word][0],
        )

    def target_word(self, example: Example, target: Target) -> int:
        """Return the word a Target explains (from its position, the word's first token)."""
        tok: Tokenized = example.state.tok
        if target.position is None or not 0 <= target.position < len(tok.ids) or tok.word_of_token[target.position] < 0:
            raise TargetError(f"target {target.label!r} names no word of input {example.index}: give word:N")
        return tok.word_of_token[target.position]

    def answer_rows(self, example: Example, target: Target) -> tuple[int, ...]:
        """Return the attention row that answers the target: its word's first token."""
        return (tok_row(example, target),)

    # ---- batched forwards ---------------------------------------------------------------
    def token_logits_of(self, rows: Sequence[Sequence[int] | np.ndarray], position: int | None) -> torch.Tensor:
        """Return (B, C) logits at `position` (None: (B, T, C) at every position) for token-id rows."""
        logits = self.logits_of(rows)  # (B, T, C): a token classifier's logits
        if logits.dim() != 3:
            raise InputError(f"a token classifier must return logits (B, T, classes), got {tuple(logits.shape)}")
        return logits if position is None else logits[:, position, :]

    def token_outputs(self, rows: Sequence[Sequence[int]], output: str = "probability") -> np.ndarray:
        """Return (B, T, C) outputs at every position of equal-length rows (one batch through the runner)."""
        logits = self.runner.map(list(rows), lambda b: self.token_logits_of(b, None))
        return transform(logits, output, self.head).numpy()

    def predict_at(self, rows: Sequence[tuple[Sequence[int] | np.ndarray, int]], output: str = "probability") -> np.ndarray:
        """Return (B, C) outputs for (token ids, answering position) rows (unique rows once)."""
        unique: dict[tuple[tuple[int, ...], int], int] = {}
        keys = [unique.setdefault((tuple(int(x) for x in r), int(p)), len(unique)) for r, p in rows]

        def run(batch: list[tuple[tuple[int, ...], int]]) -> torch.Tensor:
            logits = self.token_logits_of([r for r, _ in batch], None)  # (B, T, C)
            at = torch.tensor([p for _, p in batch], device=logits.device)
            return logits[torch.arange(len(batch), device=logits.device), at]

        logits = self.runner.map(list(unique), run, key=lambda k: len(k[0]), share="token-logits-at")
        return transform(logits, output, self.head).numpy()[np.asarray(keys)]

    # ---- views --------------------------------------------------------------------------
    def _extras(self, example: Example, target: Target) -> dict[str, Any]:
        w = self.target_word(example, target)
        return {"target_word": w, "target_word_text": example.state.tok.words[w]}

    def gradient_view(
        self, example: Example, target: Target, granularity: str = "word", output: str | None = None, **options: Any
    ) -> GradientView:
        """Return word embeddings, the all-removed input as baseline, and the forward to the word's output."""
        state: TokenState = example.state
        tok = state.tok
        output = output or "probability"
        name = self.resolve_baseline(options, gradient=True)
        row = tok_row(example, target)
        inputs, base, mask = self._embedded(tok, name)

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            out = self.model(inputs_embeds=x, attention_mask=mask.expand(x.shape[0], -1))
            return select_output(out.logits[:, row, :], target.index, output, self.head)

        view = textview.gradient_view(inputs, base, forward, self.units(tok, granularity), tok.tokens, name, output)
        view.extras.update(self._extras(example, target))
        return view

    def perturbation_view(
        self, example: Example, target: Target, granularity: str = "word", output: str | None = None, **options: Any
    ) -> PerturbationView:
        """Return the text's words as features; the output is read at the explained word's first token."""
        state: TokenState = example.state
        tok = state.tok
        output = output or "probability"
        name = self.resolve_baseline(options, gradient=False)
        row = tok_row(example, target)

        units_ = self.units(tok, granularity)
        fill = self.fill_id(name)
        ids_a = np.asarray(tok.ids)
        owner = textview.unit_of_position(len(ids_a), units_)
        outside = owner < 0
        word = self.target_word(example, target)
        own = np.isin(np.arange(len(ids_a)), tok.word_tokens[word])  # the explained word's tokens

        def evaluate(keep: np.ndarray) -> np.ndarray:
            keep = np.asarray(keep, dtype=bool).reshape(-1, len(units_.names))
            kept = outside[None, :] | keep[:, np.maximum(owner, 0)]  # (B, T) is this token kept?
            if fill is not None:
                rows = [(np.where(k, ids_a, fill), row) for k in kept]
            else:  # drop: the explained word is masked, not dropped; its row moves left
                rows = []
                for k in kept:
                    ids = np.where(k | ~own, ids_a, self.mask_id)
                    k = k | own
                    rows.append((ids[k], int(k[:row].sum())))
            return self.predict_at(rows, output)[:, target.index]

        extras = {**textview.token_extras(tok.tokens, units_), **self._extras(example, target)}
        if fill is None:
            extras["target_word_removal"] = "mask"
        return PerturbationView(
            features=units_.names,
            evaluate=evaluate,
            clustering=contiguous_linkage(len(units_.names)),
            expand=lambda values: np.asarray(values, dtype=np.float32),
            granularity=units_.granularity,
            mask=name,
            output=output,
            sampling="lime-text",
            extras=extras,
        )

    def attention_view(self, example: Example, target: Target, granularity: str = "word") -> AttentionView:
        """Return every layer's attention maps, in the graph of the word's target probability."""
        tok = example.state.tok
        row = tok_row(example, target)
        ids = torch.tensor([tok.ids], device=self.device)
        with eager_attention(self.model), torch.enable_grad():
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise InputError(f"{self.info.architecture} returned no attention weights")
        u = self.units(tok, granularity)
        return AttentionView(
            attentions=list(out.attentions),
            output=select_output(out.logits[:, row, :], target.index, "probability", self.head)[0],
            query=row,  # the explained word's first token answers
            tokens=tok.tokens,
            features=u.names,
            feature_tokens=u.tokens,
            granularity=u.granularity,
        )


def tok_row(example: Example, target: Target) -> int:
    """Return the token row a token-classifier target is read at (its word's first token)."""
    tok: Tokenized = example.state.tok
    if target.position is None or not 0 <= target.position < len(tok.ids) or tok.word_of_token[target.position] < 0:
        raise TargetError(f"target {target.label!r} names no word of input {example.index}: give word:N")
    return int(target.position)



def word_targets(adapter: Any, word: Any, target: Any = None) -> Any:
    """Return the target spec for `word=N` (API) / `--target-word N` (CLI): "word:N", or "word:N=LABEL" per target.

    `word` is a word number or a list of them; `target` None keeps each word's predicted label,
    else every label it names is explained at every word. Refused for models that are not
    token classifiers (`adapter` None skips that check: the Ray driver, which loads no model).
    """
    if word is None:
        return target
    if adapter is not None and not isinstance(adapter, TokenClassifierAdapter):
        raise TargetError("word= / --target-word is for token classifiers (*ForTokenClassification); this model classifies whole texts")
    words = list(word) if isinstance(word, (list, tuple)) else [word]
    for w in words:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)):
            raise TargetError(f"word {w!r} is not a word number")
    labels = as_list(target) if target is not None else [None]
    return [f"word:{int(w)}" + (f"={t}" if t is not None else "") for w in words for t in labels]
