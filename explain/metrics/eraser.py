"""Comprehensiveness and sufficiency as AOPC over ERASER's bins (DeYoung et al. 2020, https://arxiv.org/abs/1911.03429).

For each bin b (1, 5, 10, 20, 50 % of the features) the top-b features by attribution are
- removed: comprehensiveness term f(x) - f(x without them), high when they mattered;
- kept alone: sufficiency term f(x) - f(only them), low when they suffice.
Each score is the mean of its terms over the bins (AOPC; the k = 0 term is always zero and is
left out, so a score reads in the output's own units).
"""

from __future__ import annotations

import math

import numpy as np

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)


def bin_counts(d: int, bins: tuple[float, ...] = BINS) -> np.ndarray:
    """Return how many top features each bin covers: ceil(b * d), at least one, at most d.

    ERASER's texts have hundreds of tokens; ours may have ten words, where 1 % would be no word
    at all. Rounding up keeps every bin meaningful (on ten words: 1, 1, 1, 2 and 5 words).
    """
    if d < 1:
        raise ValueError("comprehensiveness needs at least one feature")
    # the 1e-9 keeps ceil(0.1 * 30) at 3 although 0.1 * 30 is 3.0000000000000004 in floats
    return np.asarray([min(d, max(1, math.ceil(b * d - 1e-9))) for b in bins], dtype=int)


def comprehensiveness(full: float, without_top: np.ndarray) -> float:
    """Return mean over bins of f(x) - f(x without the bin's top features) (higher is better)."""
    return float(np.mean(float(full) - np.asarray(without_top, dtype=np.float64)))


def sufficiency(full: float, only_top: np.ndarray) -> float:
    """Return mean over bins of f(x) - f(only the bin's top features) (lower is better)."""
    return float(np.mean(float(full) - np.asarray(only_top, dtype=np.float64)))
