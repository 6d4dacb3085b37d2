"""Agreement with a known rationale: precision@k and the pointing game.

Where the user knows why the answer is right (text: the words that decide it; images: a
boolean H x W mask over the object), an attribution should rank exactly that first:
- precision@k, k = the rationale's size: the share of the top-k features inside the rationale
  (ERASER's token-level plausibility, DeYoung et al. 2020, https://arxiv.org/abs/1911.03429);
- the pointing game (Zhang et al. 2016, https://arxiv.org/abs/1608.00507): 1 when the single
  most attributed feature or pixel lies inside the rationale, else 0 (no tolerance margin).
"""

from __future__ import annotations

import string
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..results.explanation import Explanation

Rationale = Sequence[str] | np.ndarray


def normalise(word: str) -> str:
    """Return a word as rationales are matched: lower case, without surrounding blanks or punctuation."""
    return word.strip().lower().strip(string.punctuation)


def rationale_mask(e: Explanation, rationale: Rationale) -> np.ndarray:
    """Return a bool mask over e's features (text) or e's H x W pixels (images) marking the rationale."""
    if e.granularity == "pixel":
        mask = np.asarray(rationale)
        if mask.shape != np.shape(e.scores):
            raise InputError(
                f"input {e.input}: the rationale mask is {mask.shape[::-1] if mask.ndim == 2 else mask.shape} "
                f"but the image is {np.shape(e.scores)[::-1]} (W x H): give a boolean mask of the image's size"
            )
        return mask.astype(bool)
    if isinstance(rationale, np.ndarray) and rationale.dtype == bool:
        if rationale.shape != (len(e.features),):
            raise InputError(f"input {e.input}: a boolean rationale needs one entry per feature ({len(e.features)}), got {rationale.shape}")
        return rationale
    if isinstance(rationale, str):
        rationale = rationale.split()
    words = {normalise(w) for w in rationale}
    return np.asarray([normalise(f) in words for f in e.features], dtype=bool)


def precision_at_k(values: np.ndarray, mask: np.ndarray) -> float:
    """Return the share of the top-k features (k = rationale size) that lie in the rationale; NaN if it is empty."""
    flat, inside = np.asarray(values, dtype=np.float64).ravel(), np.asarray(mask, dtype=bool).ravel()
    k = int(inside.sum())
    if k == 0:
        return float("nan")  # the rationale names nothing in this input: nothing to hit
    top = np.argsort(-flat, kind="stable")[:k]
    return float(inside[top].mean())


def pointing_game(values: np.ndarray, mask: np.ndarray) -> float:
    """Return 1.0 when the most attributed feature (first of ties) is in the rationale, 0.0 if not, NaN if it is empty."""
    inside = np.asarray(mask, dtype=bool).ravel()
    if not inside.any():
        return float("nan")
    return float(inside[int(np.argmax(np.asarray(values, dtype=np.float64).ravel()))])


def score(e: Explanation, rationale: Rationale) -> dict[str, float]:
    """Return {'rationale_precision', 'pointing_game'} of e against the rationale (empty when it names no feature)."""
    mask = rationale_mask(e, rationale)
    if not mask.any():
        return {}
    return {"rationale_precision": precision_at_k(e.scores, mask), "pointing_game": pointing_game(e.scores, mask)}
