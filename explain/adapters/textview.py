"""The text views both text adapters build: one definition of removing words from token ids.

A text's features are Units (words or tokens, with their token positions). Removing a feature
means the same thing to every method: its tokens become the removal's fill token (`mask`,
`pad`, `unk`, `eos`), or are deleted (`drop`); special tokens always stay. IG's baseline is the
all-removed input built by the same rule (the fill token's embeddings), so IG integrates from
exactly the input SHAP, LIME and ablation evaluate for the empty coalition.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from .base import GradientView, PerturbationView, contiguous_linkage


class Units(Protocol):
    """Features of a text: names and the token positions of each (words.Units and the like)."""

    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def tokens(self) -> tuple[tuple[int, ...], ...]: ...
    @property
    def granularity(self) -> str: ...


def token_extras(tokens: Sequence[str], units: Units) -> dict[str, Any]:
    """Return the sub-word tokens behind each feature, for reports and the word/token views."""
    return {"feature_tokens": [[tokens[t] for t in ts] for ts in units.tokens]}


def unit_of_position(length: int, units: Units) -> np.ndarray:
    """Return (length,) the feature of each token position, -1 for tokens no feature holds."""
    owner = np.full(length, -1)
    for u, positions in enumerate(units.tokens):
        owner[list(positions)] = u
    return owner


def removed_rows(ids: Sequence[int], units: Units, fill: int | None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Return keep-masks (B, d) -> B token-id rows: removed features' tokens become `fill`, or go (None).

    Tokens outside every feature (special tokens) are always kept.
    """
    ids_a = np.asarray(ids)
    owner = unit_of_position(len(ids_a), units)
    outside = owner < 0

    def rows(keep: np.ndarray) -> list[np.ndarray]:
        keep = np.asarray(keep, dtype=bool).reshape(-1, len(units.names))
        kept = outside[None, :] | keep[:, np.maximum(owner, 0)]  # (B, T) is this token kept?
        if fill is None:  # drop removed tokens: shorter rows, no padding to pay for
            return [ids_a[k] for k in kept]
        return list(np.where(kept, ids_a[None, :], fill))

    return rows


def perturbation_view(
    units: Units,
    ids: Sequence[int],
    tokens: Sequence[str],
    removal: str,
    fill: int | None,
    score: Callable[[list[np.ndarray]], np.ndarray],
    output: str,
) -> PerturbationView:
    """Return the text's features as a PerturbationView; `score` maps token-id rows to (B,) target outputs."""
    rows = removed_rows(ids, units, fill)
    return PerturbationView(
        features=units.names,
        evaluate=lambda keep: score(rows(keep)),
        clustering=contiguous_linkage(len(units.names)),
        expand=lambda values: np.asarray(values, dtype=np.float32),
        granularity=units.granularity,
        mask=removal,
        output=output,
        sampling="lime-text",
        extras=token_extras(tokens, units),
    )


def baseline_embeddings(embedding: Any, ids: torch.Tensor, special: torch.Tensor, fill: int | None) -> torch.Tensor:
    """Return (1, T, D) IG baseline: the all-removed input's embeddings (special tokens kept).

    `fill` None is the gradient-only "zero" baseline: zero vectors in place of every word.
    """
    with torch.no_grad():
        inputs = embedding(ids)
        if fill is None:
            return torch.where(special.unsqueeze(-1), inputs, torch.zeros_like(inputs)).detach()
        return embedding(torch.where(special, ids, torch.full_like(ids, fill))).detach()


def gradient_view(
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor],
    units: Units,
    tokens: Sequence[str],
    removal: str,
    output: str,
) -> GradientView:
    """Return the text's GradientView: attributions are summed over each feature's tokens and embedding dims."""

    def reduce(attr: torch.Tensor) -> np.ndarray:
        per_token = attr.detach().float().sum(-1)[0].cpu().numpy()  # (T,)
        return np.asarray([per_token[list(t)].sum() for t in units.tokens], dtype=np.float32)

    return GradientView(
        inputs=inputs,
        baselines=baselines,
        forward=forward,
        reduce=reduce,
        features=units.names,
        granularity=units.granularity,
        baseline=removal,
        output=output,
        extras=token_extras(tokens, units),
    )
