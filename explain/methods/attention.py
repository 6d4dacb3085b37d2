"""Attention maps with two aggregated views that give a score per word.

- every layer and head's attention matrix, token- and word-level (rows are queries);
- attention rollout (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928): head-mean
  attention plus the residual identity, multiplied through the layers;
- gradient-weighted relevance (Chefer et al. 2021, https://arxiv.org/abs/2012.09838):
  R <- R + mean_h((dy/dA * A)^+) R over the layers; the row of the answering token is the
  per-word score of the target. It is class-specific, unlike raw attention or rollout.

Word-level matrices average a word's query rows and sum its key columns, so rows still sum to
the attention the word's tokens pay to words (special tokens excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adapters.base import Adapter, Example
from ..explanation import Explanation, Target
from . import register
from .base import Cost, Method, setting


@dataclass(frozen=True)
class AttentionSettings:
    """Settings of the attention maps."""

    max_values: int = setting(
        2_000_000, "largest layers x heads x tokens^2 kept per head; above it only the mean over heads is stored"
    )


def rollout(att: torch.Tensor) -> torch.Tensor:
    """Return attention rollout (T, T) from (L, H, T, T) attention: residual-mixed head means."""
    eye = torch.eye(att.shape[-1], dtype=att.dtype)
    result = eye
    for layer in att:  # (H, T, T), first layer first
        a = 0.5 * layer.mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result


def relevance(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Return Chefer et al.'s relevance matrix (T, T) from attention and its gradients (L, H, T, T)."""
    r = torch.eye(att.shape[-1], dtype=att.dtype)
    for a, g in zip(att, grads):
        cam = (g * a).clamp(min=0).mean(0)  # (T, T)
        r = r + cam @ r
    return r


def to_features(m: torch.Tensor, groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Return (..., n, n) from token-level (..., T, T): query rows averaged, key columns summed."""
    t = m.shape[-1]
    rows = torch.zeros(len(groups), t, dtype=m.dtype)
    cols = torch.zeros(t, len(groups), dtype=m.dtype)
    for i, g in enumerate(groups):
        rows[i, list(g)] = 1.0 / len(g)
        cols[list(g), i] = 1.0
    return rows @ m @ cols


@register
class AttentionMethod(Method):
    """Attention maps, rollout and gradient-weighted relevance of a transformer."""

    name = "attention"
    title = "Attention (maps, rollout, relevance)"
    families = ("text-classifier", "causal-lm")
    Settings = AttentionSettings
    reference = "https://arxiv.org/abs/2012.09838"

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return per-feature relevance as scores and every map in extras."""
        s: AttentionSettings = settings
        with Cost(adapter) as cost:
            view = adapter.attention_view(example, target, granularity)
            adapter.runner.count(1)
            grads = torch.autograd.grad(view.output, view.attentions)
            att = torch.stack([a.detach()[0].float().cpu() for a in view.attentions])  # (L, H, T, T)
            grad = torch.stack([g[0].float().cpu() for g in grads])
            roll = rollout(att)
            rel = relevance(att, grad) - torch.eye(att.shape[-1])  # drop the identity: self is no cause
            groups = view.feature_tokens
            scores = np.asarray([float(rel[view.query, list(g)].sum()) for g in groups], dtype=np.float32)
            heads_kept = att.numel() <= s.max_values
            stored = att if heads_kept else att.mean(1, keepdim=True)
            extras = {
                "attention": to_features(stored, groups).numpy().astype(np.float32),
                "rollout": to_features(roll, groups).numpy().astype(np.float32),
                "token_attention": stored.numpy().astype(np.float32),
                "token_rollout": roll.numpy().astype(np.float32),
                "tokens": list(view.tokens),
                "query": int(view.query),
                "heads": "all" if heads_kept else "mean",
                "feature_tokens": [[view.tokens[t] for t in g] for g in groups],
            }
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=view.features,
            scores=scores,
            granularity=view.granularity,
            settings=vars(s),
            checks={},
            extras=extras,
        )
