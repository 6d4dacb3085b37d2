"""Per-method summaries of metric checks across inputs: mean, std and count of each figure."""

from __future__ import annotations

import warnings
from typing import Iterable, Mapping

import numpy as np

from ..results.explanation import Explanation

# The metrics evaluate() writes, with which direction is better (None: read against its pair).
METRIC_KEYS: Mapping[str, str | None] = {
    "deletion_auc": "lower",
    "deletion_auc_random": None,
    "insertion_auc": "higher",
    "insertion_auc_random": None,
    "comprehensiveness": "higher",
    "comprehensiveness_random": None,
    "sufficiency": "lower",
    "sufficiency_random": None,
    "sanity_rank_corr": "lower (in absolute value)",
    "sanity_flag": "lower",
    "agreement_spearman": None,
    "rationale_precision": "higher",
    "pointing_game": "higher",
}

# Figures behind the methods' self-checks, as each Explanation's `checks` holds them (the
# verdicts themselves are Explanation.self_checks; README's method table gives each threshold).
SELF_CHECKS: Mapping[str, str] = {
    "delta_relative": "IG completeness: |convergence delta| / |f(x) - f(baseline)| (lower is better)",
    "stability": "SHAP and LIME stability: top-k average overlap of two estimates (SHAP: full budget vs the same run cut at half of it, a convergence check, 1 when exact; LIME: surrogates on two independent halves of the neighbours); fails below 0.75 (higher is better)",
    "heldout_r2": "LIME surrogate fit, the verdict's figure: weighted R^2 of each half's surrogate on the other half's neighbours; fails below 0.5 (higher is better)",
    "score": "LIME's own R^2 on the neighbours its surrogate was fitted to (in-sample: noise can reach 0.5; not a verdict)",
    "worst_sample_delta": "IG with a noise tunnel: the largest completeness gap of one noisy sample; the check fails above 1% of |f(x) - f(baseline)| (lower is better)",
    "efficiency_gap": "SHAP accounting, not a check: |sum of values - (f(x) - base value)|, 0 by construction of shap's Partition explainer",
}


def stats(values: Iterable[float]) -> dict[str, float]:
    """Return {'mean', 'std', 'n'} over the finite values (mean and std NaN when there are none)."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"mean": float("nan"), "std": float("nan"), "n": 0.0}
    return {"mean": float(x.mean()), "std": float(x.std()), "n": float(x.size)}


def summarise(explanations: Iterable[Explanation]) -> dict[str, dict[str, dict[str, float]]]:
    """Return {method: {check: stats}} for every metric key and self-check present, methods in run order."""
    values: dict[str, dict[str, list[float]]] = {}
    for e in explanations:
        per = values.setdefault(e.method, {})
        for key in (*METRIC_KEYS, *SELF_CHECKS):
            v = e.metrics.get(key) if key in METRIC_KEYS else e.checks.get(key)
            if isinstance(v, (int, float, np.floating)) and not isinstance(v, bool):
                per.setdefault(key, []).append(float(v))
    return {m: {k: stats(v) for k, v in per.items()} for m, per in values.items()}


def curve_stats(curves: Iterable[Iterable[float]]) -> dict[str, list[float]]:
    """Return the pointwise mean and std of equal-length curves (e.g. sanity rho per step)."""
    arr = np.asarray([list(c) for c in curves], dtype=np.float64)
    if not arr.size:
        return {"mean": [], "std": []}
    with warnings.catch_warnings():  # an all-NaN step (every map constant) is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        finite = np.where(np.isfinite(arr), arr, np.nan)
        return {"mean": np.nanmean(finite, 0).tolist(), "std": np.nanstd(finite, 0).tolist()}


_COLUMNS = (
    ("deletion_auc", "deletion AUC ↓"),
    ("insertion_auc", "insertion AUC ↑"),
    ("comprehensiveness", "comprehensiveness ↑"),
    ("sufficiency", "sufficiency ↓"),
)


def table(metrics: Mapping[str, object]) -> str:
    """Return run["metrics"] as a plain-text table: per method each figure beside its chance level, hit rate, sanity."""
    methods = metrics.get("methods")
    if not isinstance(methods, Mapping):
        return "no metrics in these results: run explain.metrics.evaluate first"
    head = f"{'method':<10} " + " ".join(f"{title:>22}" for _, title in _COLUMNS) + f" {'hit ↑':>6} {'sanity ρ':>8} {'flag':>5}"
    lines = [head]
    for method, s in methods.items():
        def mean(key: str) -> float:
            return float(s.get(key, {}).get("mean", float("nan")))

        cells = " ".join(f"{mean(k):>10.3f} (rand {mean(k + '_random'):>6.3f})" for k, _ in _COLUMNS)
        lines.append(f"{method:<10} {cells} {mean('pointing_game'):>6.2f} {mean('sanity_rank_corr'):>8.2f} {mean('sanity_flag'):>5.2f}")
    return "\n".join(lines)
