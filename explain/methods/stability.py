"""Self-checks that can fail for estimated attributions: do two estimates agree on the top features?

SHAP and LIME estimate their values from a budget of model rows; too small a budget gives an
answer that looks as confident as a good one. Two estimates are compared on their top features:

- LIME: surrogates fitted on two independent halves of the neighbourhood. Their disagreement
  measures the estimate's variance at half the sample size.
- SHAP: the values at the full budget and at half of it. The half-budget run is the same
  explainer cut short (the rows it asks for are a prefix of the full run's, with the same
  tie-breaks), so this measures convergence - whether the second half of the budget still moved
  the top features - not the variance of independent estimates. It is conservative: an estimate
  still moving fails (benchmarks/calibration.py measures how often a pass has the wrong top
  feature, and a failure the right one); two budgets that agree can still share a bias both
  inherited from the same first half.

Agreement is the top-k *average overlap* (Webber, Moffat & Zobel 2010, the finite prefix of
rank-biased overlap): the mean over depths j of |top_j(a) & top_j(b)| / j, by |value|, over the
depths up to k = 3 where the estimate shown has a clear cut (see `depths`). It is 1 when both
estimates give the same top sets, and at most 2/3 when the top feature differs at depth 1. Tied values do not get an arbitrary order: a feature is in
top_j only when at most j features have an |value| at least as large, so a top tied between
more features than j (an unexpanded SHAP cluster splits its credit evenly) counts as no answer.
"""

from __future__ import annotations

import numpy as np

from ..results.explanation import SelfCheck

TOP_K = 3  # the features a reader looks at first
SHARE = 0.25  # a feature counts among the top when |value| is at least this share of the largest
GAP = 0.05  # ranks closer than this share of the largest |value| are compared as a set, not in order
ZERO = 1e-12  # an estimate whose every |value| is below this says "nothing matters"
STABILITY_THRESHOLD = 0.75  # with depths {1, 2, 3}: the top feature must agree; a swap of ranks 2 and 3 passes (0.83)


def top_set(values: np.ndarray, j: int) -> set[int]:
    """Return the features whose tie-inclusive rank by |value| is at most j (ties never split)."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    if not a.size or not np.isfinite(a).all():  # a NaN or infinite value ranks nothing
        return set()
    tol = 1e-9 * float(a.max()) + 1e-15  # equal credit split through a tree differs by rounding only
    return {i for i in range(a.size) if int((a >= a[i] - tol).sum()) <= j}


def depths(reference: np.ndarray, k: int = TOP_K, share: float = SHARE, gap: float = GAP, first: bool = False) -> list[int]:
    """Return the depths j (1..k) at which the top-j set of `reference` is well defined.

    Only features within `share` of the largest |value| count (features far below the top carry
    next to nothing and their order is noise in any estimate); a depth counts only where ranks j
    and j+1 differ by at least `gap` of the largest |value|, so that two features the estimate
    itself calls about equal are compared as a set, not by their order. `first` always keeps
    depth 1 (SHAP: its top feature must be resolved, not an unexpanded cluster split evenly).
    """
    a = np.sort(np.abs(np.asarray(reference, dtype=np.float64)))[::-1]
    if not a.size or not np.isfinite(a).all() or a[0] == 0:
        return [1]
    a = np.r_[a, 0.0]
    cuts = [j for j in range(1, min(k, a.size - 1) + 1) if a[j - 1] >= share * a[0] and a[j - 1] - a[j] >= gap * a[0]]
    if first and 1 not in cuts:
        cuts.insert(0, 1)
    return cuts or [1]


def average_overlap(a: np.ndarray, b: np.ndarray, at: list[int]) -> float:
    """Return the average overlap of two score vectors by |value| over the depths `at` (1 = same sets)."""
    return float(np.mean([len(top_set(a, j) & top_set(b, j)) / j for j in at]))


def stability(
    values: np.ndarray,
    other: np.ndarray,
    what: str,
    threshold: float = STABILITY_THRESHOLD,
    reference: np.ndarray | None = None,
    first: bool = False,
) -> SelfCheck:
    """Return the 'stability' SelfCheck: the top-k average overlap of `values` and another estimate `other`.

    `other` is an independent estimate (LIME's other half) or the same run at half the budget
    (SHAP: convergence). The depths compared come from `reference` (default `values`): the
    estimate shown, when `values` and `other` are two halves of it. See `depths`. Both all zero:
    nothing to compare, so no pass (the 'evidence' check gives the verdict "no evidence").
    """
    if max(_largest(values), _largest(other)) <= ZERO:  # nothing to compare: the verdict is "no evidence"
        return SelfCheck("stability", False, 0.0, threshold,
                         f"{what} have nothing to compare: both are 0 for every feature (no evidence, see the 'evidence' check)")
    at = depths(values if reference is None else reference, first=first)
    k = max(at)
    value = average_overlap(values, other, at)
    passed = value >= threshold
    verdict = "agree" if passed else "disagree"
    sentence = (
        f"{what} {verdict} on the top {k} feature{'s' if k > 1 else ''} (average overlap {value:.2f}, "
        f"{'at least' if passed else 'below'} {threshold:.2f})"
    )
    if not passed:
        sentence += ": the estimate has not settled; raise the budget"
    return SelfCheck("stability", passed, value, threshold, sentence)


def _largest(values: np.ndarray) -> float:
    a = np.abs(np.asarray(values, dtype=np.float64))
    return float(a.max()) if a.size and np.isfinite(a).all() else float("inf")


def exact(what: str) -> SelfCheck:
    """Return a passed 'stability' SelfCheck for an estimate that is exact (nothing to disagree)."""
    return SelfCheck("stability", True, 1.0, STABILITY_THRESHOLD, f"exact: {what}")
