"""Method comparison: which explanations of one input and target can be compared, and how much they agree.

Agreement is measured two ways, both on the same features:
- Spearman's rank correlation of the signed scores (1: same order, -1: reversed);
- top-k overlap: the share of the k features with the largest |score| that both methods pick.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .encode import number

if TYPE_CHECKING:
    from explain.explanation import Explanation

TOP_K = 5  # text: features in the top-k overlap (fewer for short inputs)
TOP_SHARE = 0.05  # images: share of pixels in the top-k overlap


def rankdata(a: np.ndarray) -> np.ndarray:
    """Return 1-based ranks with ties given their average rank (scipy.stats.rankdata, 'average')."""
    a = np.ravel(a)
    order = np.argsort(a, kind="mergesort")
    sa = a[order]
    first = np.r_[True, sa[1:] != sa[:-1]]  # (n,) starts of runs of equal values
    group = np.cumsum(first) - 1
    starts = np.r_[np.nonzero(first)[0], a.size]  # run boundaries
    avg = (starts[group] + starts[group + 1] - 1) / 2.0 + 1.0
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = avg
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Return Spearman's rank correlation of two equally long score arrays (None if undefined)."""
    a, b = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    if a.size < 2 or a.size != b.size or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra, rb = rankdata(a), rankdata(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = np.corrcoef(ra, rb)[0, 1]
    return number(rho)


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float | None:
    """Return |top-k(a) ∩ top-k(b)| / k, where top-k are the k entries with the largest |score|."""
    a, b = np.ravel(np.abs(np.asarray(a, dtype=np.float64))), np.ravel(np.abs(np.asarray(b, dtype=np.float64)))
    if a.size != b.size or a.size == 0 or k < 1:
        return None
    k = min(k, a.size)
    ta = set(np.argsort(-a, kind="stable")[:k].tolist())
    tb = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(ta & tb) / k


def choose_k(n: int, pixels: bool) -> int:
    """Return k for the top-k overlap of n features (or pixels)."""
    if pixels:
        return max(1, round(TOP_SHARE * n))
    return max(1, min(TOP_K, n - 1))


def comparable(exps: Sequence[Explanation]) -> list[int]:
    """Return the positions of the explanations that share the first one's features (or grid shape)."""
    if not exps:
        return []
    first = exps[0]
    out = []
    for i, e in enumerate(exps):
        if e.granularity == "pixel" or first.granularity == "pixel":
            same = np.shape(e.scores) == np.shape(first.scores) and e.granularity == first.granularity
        else:
            same = tuple(e.features) == tuple(first.features) and np.size(e.scores) == len(e.features)
        if same:
            out.append(i)
    return out


def agreement(exps: Sequence[Explanation], maps: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """Return the comparison of one target's explanations: comparable rows, k, and per-pair agreement.

    `maps` replaces each explanation's scores (e.g. the shrunk pixel maps the page shows).
    """
    rows = comparable(exps)
    arrays = [np.asarray(maps[i] if maps is not None else exps[i].scores) for i in rows]
    pixels = bool(rows) and exps[rows[0]].granularity == "pixel"
    n = int(arrays[0].size) if arrays else 0
    k = choose_k(n, pixels)
    pairs = []
    for x in range(len(rows)):
        for y in range(x + 1, len(rows)):
            a, b = arrays[x], arrays[y]
            pairs.append([rows[x], rows[y], spearman(a, b), top_k_overlap(a, b, k)])
    basis = f"top {TOP_SHARE:.0%} of pixels ({k}) by |score|" if pixels else f"top {k} features by |score|"
    return {"rows": rows, "k": k, "basis": basis, "pairs": pairs}
