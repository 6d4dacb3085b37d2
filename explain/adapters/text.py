"""Adapter for Hugging Face sequence classifiers of the BERT family (BERT, DistilBERT, RoBERTa...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..explanation import InputRecord, ModelInfo, Target
from ..runner import Runner
from .attention_impl import eager_attention
from .base import (
    Adapter,
    AttentionView,
    Example,
    GradientView,
    PerturbationView,
    contiguous_linkage,
    select_output,
    transform,
)
from .words import Tokenized, tokenize

BASELINES = ("pad", "mask", "zero")
MASKS = ("mask", "drop", "pad", "unk")


@dataclass(frozen=True)
class Units:
    """The features of a text at one granularity: names and the token positions of each."""

    names: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]
    granularity: str


class TextClassifierAdapter(Adapter):
    """Tokenisation, word grouping, embeddings and batched forwards of a text classifier."""

    family = "text-classifier"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, info: ModelInfo, runner: Runner) -> None:
        super().__init__(model, info, runner)
        self.tokenizer = tokenizer
        self.pad_id = _first_id(tokenizer, ("pad_token_id", "unk_token_id", "eos_token_id"), 0)
        self.mask_id = _first_id(tokenizer, ("mask_token_id", "unk_token_id", "pad_token_id"), self.pad_id)
        self.unk_id = _first_id(tokenizer, ("unk_token_id", "mask_token_id", "pad_token_id"), self.pad_id)

    # ---- inputs -------------------------------------------------------------------------
    def prepare(self, raw: Any, index: int, max_length: int | None = None, truncate: bool = True, **_: Any) -> Example:
        """Tokenise one text and compute the model's class probabilities once."""
        if not isinstance(raw, str):
            raise InputError(f"input {index}: expected a text, got {type(raw).__name__}")
        if not raw.strip():
            raise InputError(f"input {index}: the text is empty")
        limits = [x for x in (max_length, self.info.max_length) if x]
        limit = min(limits) if limits else None
        tok = tokenize(self.tokenizer, raw, limit)
        if tok.truncated_from is not None and not truncate:
            raise InputError(f"input {index}: {tok.truncated_from} tokens is longer than the limit of {limit}")
        if not tok.word_tokens:
            raise InputError(f"input {index}: the text has no tokens besides special tokens")
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
        )
        return Example(index=index, record=record, probs=probs, state=tok)

    def units(self, tok: Tokenized, granularity: str) -> Units:
        """Return the features (whole words, or raw non-special tokens) of a tokenised text."""
        if granularity == "word":
            return Units(tok.words, tok.word_tokens, "word")
        if granularity == "token":
            pos = tuple(t for t, s in enumerate(tok.special) if not s)
            return Units(tuple(tok.tokens[t] for t in pos), tuple((t,) for t in pos), "token")
        raise InputError(f"unknown granularity {granularity!r}: use word or token")

    # ---- batched forwards ---------------------------------------------------------------
    def logits_of(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Return (B, C) logits for a batch of token-id rows, right-padded to the longest."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return out.logits

    def predict(self, rows: Sequence[Sequence[int]], output: str = "probability") -> np.ndarray:
        """Return (B, C) outputs for token-id rows through the batched runner (unique rows once)."""
        unique: dict[tuple[int, ...], int] = {}
        keys = [unique.setdefault(tuple(r), len(unique)) for r in rows]
        distinct = list(unique)
        logits = self.runner.map(distinct, lambda b: self.logits_of(b), key=len)
        return transform(logits, output).numpy()[np.asarray(keys)]

    # ---- views --------------------------------------------------------------------------
    def gradient_view(
        self,
        example: Example,
        target: Target,
        baseline: str = "pad",
        granularity: str = "word",
        output: str | None = None,
        **_: Any,
    ) -> GradientView:
        """Return word embeddings, a pad/mask/zero baseline (special tokens kept) and the forward."""
        tok: Tokenized = example.state
        output = output or "probability"
        if baseline not in BASELINES:
            raise InputError(f"unknown baseline {baseline!r}: use one of {', '.join(BASELINES)}")
        emb = self.model.get_input_embeddings()
        ids = torch.tensor([tok.ids], device=self.device)
        special = torch.tensor([tok.special], device=self.device)
        with torch.no_grad():
            inputs = emb(ids).detach()  # (1, T, D)
            if baseline == "zero":
                base = torch.where(special.unsqueeze(-1), inputs, torch.zeros_like(inputs))
            else:
                fill = self.pad_id if baseline == "pad" else self.mask_id
                base_ids = torch.where(special, ids, torch.full_like(ids, fill))
                base = emb(base_ids).detach()
        mask = torch.ones_like(ids)
        units = self.units(tok, granularity)

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            out = self.model(inputs_embeds=x, attention_mask=mask.expand(x.shape[0], -1))
            return select_output(out.logits, target.index, output)

        def reduce(attr: torch.Tensor) -> np.ndarray:
            per_token = attr.detach().float().sum(-1)[0].cpu().numpy()  # (T,)
            return np.asarray([per_token[list(t)].sum() for t in units.tokens], dtype=np.float32)

        return GradientView(
            inputs=inputs,
            baselines=base,
            forward=forward,
            reduce=reduce,
            features=units.names,
            granularity=units.granularity,
            baseline=baseline,
            output=output,
            extras=_token_extras(tok, units),
        )

    def perturbation_view(
        self,
        example: Example,
        target: Target,
        mask: str = "mask",
        granularity: str = "word",
        output: str | None = None,
        **_: Any,
    ) -> PerturbationView:
        """Return the text's words (or tokens) as features removed by masking or dropping them."""
        tok: Tokenized = example.state
        output = output or "probability"
        if mask not in MASKS:
            raise InputError(f"unknown mask {mask!r}: use one of {', '.join(MASKS)}")
        units = self.units(tok, granularity)
        fill = {"mask": self.mask_id, "pad": self.pad_id, "unk": self.unk_id}.get(mask)
        ids = np.asarray(tok.ids)
        unit_of_pos = np.full(len(ids), -1)
        for u, positions in enumerate(units.tokens):
            unit_of_pos[list(positions)] = u

        def evaluate(keep: np.ndarray) -> np.ndarray:
            keep = np.asarray(keep, dtype=bool).reshape(-1, len(units.names))
            rows: list[list[int]] = []
            for k in keep:
                kept_pos = (unit_of_pos < 0) | k[np.maximum(unit_of_pos, 0)]
                if fill is None:  # drop removed tokens: shorter rows, no padding to pay for
                    rows.append(ids[kept_pos].tolist())
                else:
                    rows.append(np.where(kept_pos, ids, fill).tolist())
            return self.predict(rows, output)[:, target.index]

        return PerturbationView(
            features=units.names,
            evaluate=evaluate,
            clustering=contiguous_linkage(len(units.names)),
            expand=lambda values: np.asarray(values, dtype=np.float32),
            granularity=units.granularity,
            mask=mask,
            output=output,
            sampling="lime-text",
            extras=_token_extras(tok, units),
        )


    def attention_view(self, example: Example, target: Target, granularity: str = "word") -> AttentionView:
        """Return every layer's attention maps, in the graph of the target's probability."""
        tok: Tokenized = example.state
        ids = torch.tensor([tok.ids], device=self.device)
        with eager_attention(self.model), torch.enable_grad():
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise InputError(f"{self.info.architecture} returned no attention weights")
        units = self.units(tok, granularity)
        return AttentionView(
            attentions=list(out.attentions),
            output=select_output(out.logits, target.index, "probability")[0],
            query=0,  # the classification token's row ([CLS] / <s>) holds the answer
            tokens=tok.tokens,
            features=units.names,
            feature_tokens=units.tokens,
            granularity=units.granularity,
        )


def _token_extras(tok: Tokenized, units: Units) -> dict[str, Any]:
    """The sub-word tokens behind each feature, for reports and the word/token views."""
    return {"feature_tokens": [[tok.tokens[t] for t in ts] for ts in units.tokens]}


def _first_id(tokenizer: Any, names: tuple[str, ...], default: int) -> int:
    for n in names:
        v = getattr(tokenizer, n, None)
        if v is not None:
            return int(v)
    return default
