"""Deletion and insertion curves (RISE, Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421).

Features are removed (deletion) or added to an empty input (insertion) in order of
attribution, highest first; the target output is tracked at about `steps` points and the
curve's area is taken by the trapezoid rule over the fraction of features, 0..1. A faithful
attribution makes the deletion curve fall fast (small area) and the insertion curve rise fast
(large area). Everything here is pure numpy: the model is reached only through the keep-masks.
"""

from __future__ import annotations

import numpy as np


def ranking(values: np.ndarray) -> np.ndarray:
    """Return feature indices by decreasing value (ties keep feature order, so runs repeat)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    # NaN would sort last under argsort(-x) anyway; make it explicit so it can never lead.
    return np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")


def random_orders(d: int, n: int, seed: int | list[int]) -> list[np.ndarray]:
    """Return n seeded random permutations of d features (the chance baseline of every curve)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(d) for _ in range(n)]


def curve_counts(d: int, steps: int) -> np.ndarray:
    """Return the feature counts 0..d at which a curve is measured: about `steps` + 1 points.

    With d <= steps every count is used, so short texts get their exact curve.
    """
    if d < 1:
        raise ValueError("a curve needs at least one feature")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return np.unique(np.round(np.linspace(0, d, min(steps, d) + 1)).astype(int))


def top_masks(order: np.ndarray, counts: np.ndarray, d: int) -> np.ndarray:
    """Return (len(counts), d) bool masks, row j marking the first counts[j] features of `order`."""
    rank = np.empty(d, dtype=int)
    rank[np.asarray(order)] = np.arange(d)  # rank[f] = position of feature f in the order
    return rank[None, :] < np.asarray(counts)[:, None]


def deletion_masks(order: np.ndarray, counts: np.ndarray, d: int) -> np.ndarray:
    """Return keep-masks with the top counts[j] features removed (row 0 of counts 0: the input)."""
    return ~top_masks(order, counts, d)


def insertion_masks(order: np.ndarray, counts: np.ndarray, d: int) -> np.ndarray:
    """Return keep-masks with only the top counts[j] features kept (counts 0: everything removed)."""
    return top_masks(order, counts, d)


def auc(fractions: np.ndarray, values: np.ndarray) -> float:
    """Return the area under a curve by the trapezoid rule on its [0, 1] fraction axis."""
    x = np.asarray(fractions, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
