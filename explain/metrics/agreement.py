"""Agreement between explanations: Spearman rank correlation and top-k overlap of their scores.

The one definition of method agreement: `explain.metrics.evaluate` and the HTML report
(`explain.reports.compare`) both call `pair_agreement`. Top-k overlap is the headline figure
(the share of the top 20 % most supporting features that both methods pick); Spearman over
every feature is kept for the metrics table, but on short texts it mostly ranks near-zero
words against each other, so the report shows top-k.

Methods that agree on the same input and target are more believable together; methods that
disagree are a reason to read the faithfulness scores before trusting either. Image maps are
compared on a grid of cells (mean score per cell), because a smooth Grad-CAM map and a
speckled IG map can point at the same region yet rank single pixels very differently.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

import numpy as np

from ..results.explanation import Explanation

TOP_FRACTION = 0.2  # top-k overlap compares the top 20 % of features (at least one)
IMAGE_CELLS = 64  # image maps are pooled to about 8 x 8 cells before comparing


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Return the Spearman rank correlation of two score vectors; NaN if either is constant."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot correlate scores of {a.size} and {b.size} features")
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")  # a constant ranking carries no order to agree with
    return float(spearmanr(a, b).statistic)


def top_k(values: np.ndarray, k: int) -> set[int]:
    """Return the indices of the k largest values (ties broken by position)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    return set(np.argsort(-flat, kind="stable")[:k].tolist())


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Return |top-k(a) & top-k(b)| / k: the share of a's top features that b also ranks top."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return len(top_k(a, k) & top_k(b, k)) / k


def default_k(d: int) -> int:
    """Return the k used for top-k overlap over d features: ceil(TOP_FRACTION * d), at least 1."""
    return max(1, math.ceil(TOP_FRACTION * d - 1e-9))


def comparable(e: Explanation, cells: int = IMAGE_CELLS) -> np.ndarray:
    """Return e's scores as a vector to compare: per feature (text) or per grid cell (images)."""
    scores = np.asarray(e.scores, dtype=np.float64)
    if e.granularity != "pixel":
        return scores
    from ..adapters.image import grid_segments

    h, w = scores.shape
    seg = grid_segments(h, w, cells).ravel()
    counts = np.bincount(seg)
    return np.bincount(seg, scores.ravel(), len(counts)) / np.maximum(counts, 1)


def pair_agreement(a: Explanation, b: Explanation, k: int | None = None) -> dict[str, float] | None:
    """Return {'spearman', 'top_k', 'k'} for two explanations of the same input and target, or None if incomparable."""
    va, vb = comparable(a), comparable(b)
    if va.shape != vb.shape or (a.granularity != "pixel" and a.features != b.features):
        return None  # e.g. word vs token granularity: no common features to rank
    k = k or default_k(va.size)
    return {"spearman": spearman(va, vb), "top_k": top_k_overlap(va, vb, min(k, va.size)), "k": float(k)}


def basis(n: int, pixel: bool, k: int | None = None) -> str:
    """Return in words what top-k overlap compares over n features (or image cells)."""
    k = k or default_k(n)
    what = "image cells (8 x 8 grid means)" if pixel else "features"
    return f"the top {k} of {n} {what} by signed score (most supporting the target)"


def target_key(e: Explanation) -> tuple[int, int, int | None]:
    """Return (input, target index, target position): explanations with equal keys explain the same thing."""
    return (e.input, e.target.index, e.target.position)


def agreement(explanations: Sequence[Explanation]) -> list[dict[str, Any]]:
    """Return one row per method pair explaining the same input and target.

    Each row: input, target (label), target_index, position, a, b (method names), spearman, top_k, k.
    """
    groups: dict[tuple[int, int, int | None], list[Explanation]] = {}
    for e in explanations:
        groups.setdefault(target_key(e), []).append(e)
    rows: list[dict[str, Any]] = []
    for (i, _, _), group in groups.items():
        for a, b in itertools.combinations(group, 2):
            if a.method == b.method:
                continue
            pair = pair_agreement(a, b)
            if pair is not None:
                t = a.target
                rows.append({"input": i, "target": t.label, "target_index": t.index, "position": t.position, "a": a.method, "b": b.method, **pair})
    return rows


def pair_summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return per method pair ('a|b'): mean and std of spearman and top_k over inputs, and n."""
    by_pair: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_pair.setdefault(f"{r['a']}|{r['b']}", []).append(r)
    out: dict[str, dict[str, float]] = {}
    for name, rs in by_pair.items():
        rho = np.asarray([r["spearman"] for r in rs], dtype=np.float64)
        top = np.asarray([r["top_k"] for r in rs], dtype=np.float64)
        out[name] = {
            "spearman_mean": _nanmean(rho),
            "spearman_std": _nanstd(rho),
            "top_k_mean": float(np.mean(top)),
            "top_k_std": float(np.std(top)),
            "n": float(len(rs)),
        }
    return out


def mean_agreement(rows: Sequence[dict[str, Any]]) -> dict[tuple[int, int, int | None, str], float]:
    """Return {(input, target index, position, method): mean Spearman with the other methods there}."""
    found: dict[tuple[int, int, int | None, str], list[float]] = {}
    for r in rows:
        for method in (r["a"], r["b"]):
            found.setdefault((r["input"], r["target_index"], r["position"], method), []).append(r["spearman"])
    return {k: _nanmean(np.asarray(v, dtype=np.float64)) for k, v in found.items()}


def _nanmean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.mean(x)) if x.size else float("nan")


def _nanstd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.std(x)) if x.size else float("nan")
