"""Adaptive budgets for SHAP and LIME: estimate in rounds of rows, stop when the top features have settled.

None of shap, lime or captum stops when its explanation has stopped changing; a fixed budget
spends as much on a 6-word sentence as on a 120-word review. Here an estimate is made at
budgets start x (1, 1.5, 2, 3, 4, 6, ...) up to its cap (the budget setting:
SHAP `max_evals`, LIME `num_samples`), and the run stops at the first round where

1. the top features and their signs are the same as in the previous round: at every depth
   j <= TOP_K where the current estimate has a clear cut (`stability.depths`: the features
   within a quarter of the largest |value|, ranks at least 5% of it apart), both estimates'
   tie-aware top-j sets (`stability.top_set`) hold the same j features, each of those features
   keeps its sign, and no even split may hide a top feature: SHAP gives every feature of a
   cluster it has not expanded yet one equal share, so no top feature may share its exact value
   with another, and no group sharing one exact value may hold in total as much credit as the
   smallest top feature; and
2. the method's own stability statistic passes at this budget (SHAP: the values at this
   budget and at half of it; LIME: surrogates fitted on two independent halves of the
   neighbours drawn so far), the same statistic its `stability` self-check reports.

SHAP also stops when a round expanded its whole hierarchy (the values are then exact). A run
whose top never settles stops at the cap, with today's fixed-budget answer.

Nothing is evaluated twice: SHAP's Partition explainer asks, at a larger `max_evals` and the
same seed, first for exactly the rows it asked at a smaller one (its queue pops the same
clusters in the same order with the same tie-break draws; shap_partition.partition), so each
round re-asks the earlier rows from the memo (`Cost.counted(remember=True)`) and the model
runs only the new ones. LIME's rounds take successive slices of one draw of the cap's
neighbours, so a run that reaches its cap has drawn, scored and fitted exactly the fixed run's
neighbours.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..results.explanation import SelfCheck
from . import stability

# Rounds double, with a midpoint between: start x (1, 1.5, 2, 3, 4, 6, 8, ...). A round spends at
# most half again the rows of the one before, and half of every budget from 2 x start on is an
# earlier round's, whose SHAP values are kept: the stability statistic then needs no replay.
STEPS = (1.0, 1.5)
# The first round's budget. SHAP: 32 evaluations resolve a top word among ~100 through the word
# hierarchy's ~7 levels (2 rows a level), and expand a sentence of 6 words or fewer fully.
# LIME: 2 neighbours per feature, at least 100 (each half of the stability statistic then has
# 50 or more). On benchmarks/quality_per_row.py's texts of 40-120 words with five planted cues,
# a start of 2 per feature stopped at about 290 rows with the top 3 of a 3,600-row fixed run;
# a start of 8 per feature spent 1,090.
START_SHAP = 32
START_LIME_PER_FEATURE, START_LIME_MIN = 2, 100
TOP_K = stability.TOP_K

RULE = (
    "rounds of start x (1, 1.5, 2, 3, 4, 6, ...) up to the cap; stop when the top-{TOP_K} features (at the depths with a clear cut) "
    "and their signs equal the previous round's and the stability statistic passes, when the values are exact, or at the cap"
)


@dataclass(frozen=True)
class Estimate:
    """One round's estimate: per-feature values, whether they are exact, and the method's stability statistic."""

    values: np.ndarray
    stable: Callable[[], bool]  # called only once the top has settled (it may cost a replay, never model rows)
    exact: bool = False
    payload: Any = None  # what the method needs back from the round it keeps (SHAP: the base value)


@dataclass
class Grown:
    """How an adaptive run went: the rounds' budgets and model rows, where and why it stopped."""

    unit: str  # "evaluations" (SHAP) | "samples" (LIME)
    cap: int
    rounds: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # model rows each round ran (rows the memo answered not counted)
    stopped: str = "cap"  # "settled" | "exact" | "cap"
    since: int | None = None  # the first round of the unbroken run of equal tops that ends at the stop
    depth: int = 1  # the top-k compared at the stop
    estimate: Estimate | None = None
    values_at: dict[int, np.ndarray] = field(default_factory=dict)  # SHAP: the values at each budget estimated (rounds, halves)

    @property
    def kept(self) -> Estimate:
        """Return the estimate of the last round, the one the explanation shows."""
        if self.estimate is None:
            raise ValueError("an adaptive run with no round")
        return self.estimate

    @property
    def used(self) -> int:
        """Return the budget of the round whose estimate is kept (the last one)."""
        return self.rounds[-1]

    def sentence(self) -> str:
        """Return what happened, in a sentence the report can show."""
        if self.stopped == "exact":
            return f"stopped at {self.used} of at most {self.cap} {self.unit}: exact"
        top = f"top {self.depth} and {'its sign' if self.depth == 1 else 'their signs'}"
        if self.stopped == "settled" and self.used == self.cap:
            return f"settled at its cap of {self.cap} {self.unit}: {top} unchanged since {self.since}"
        if self.stopped == "settled":
            return f"stopped at {self.used} of at most {self.cap} {self.unit}: {top} unchanged since {self.since}"
        if self.since is not None:
            return f"ran to its cap of {self.cap} {self.unit}: {top} unchanged since {self.since}, but the stability statistic did not pass"
        return f"ran to its cap of {self.cap} {self.unit}: the top features were still changing"

    def record(self) -> dict[str, Any]:
        """Return the plain record kept in an Explanation's extras['budget']."""
        return {"rule": RULE, "stopped": self.stopped, "used": self.used, "cap": self.cap, "unit": self.unit,
                "since": self.since, "top_k": self.depth, "rounds": list(self.rounds), "rows": list(self.rows),
                "sentence": self.sentence()}

    def annotate(self, check: SelfCheck) -> SelfCheck:
        """Return the stability self-check with this run's sentence appended (what the report shows)."""
        text = check.sentence.rstrip(".")
        return SelfCheck(check.name, check.passed, check.value, check.threshold, f"{text}; {self.sentence()}")


def schedule(start: int, cap: int) -> list[int]:
    """Return the rounds' budgets: start x (1, 1.5, 2, 3, 4, 6, 8, ...) below cap, then cap."""
    out: list[int] = []
    start = max(1, int(start))
    for k in itertools.count():
        b = int(start * 2 ** (k // 2) * STEPS[k % 2])
        if b >= cap:
            return out + [int(cap)]
        out.append(b)
    raise AssertionError("unreachable")


def lime_start(d: int) -> int:
    """Return LIME's first round: 2 neighbours per feature, at least 100."""
    return max(START_LIME_MIN, START_LIME_PER_FEATURE * d)


def same_top(previous: np.ndarray, current: np.ndarray, k: int = TOP_K, first: bool = False) -> int:
    """Return the depth compared when both estimates have the same resolved top features and signs, else 0.

    The depths are those where `current` has a clear cut (stability.depths; `first` always keeps
    depth 1, as SHAP's check does); at each, both top-j sets must hold the same j features (a
    top tied between more than j features, such as an unexpanded cluster's even split, is no
    answer), and every feature in the deepest set must have the same nonzero sign in both.
    """
    at = stability.depths(current, k, first=first)
    for j in at:
        a, b = stability.top_set(current, j), stability.top_set(previous, j)
        if len(a) != j or a != b:
            return 0
    top = stability.top_set(current, max(at))
    signs = np.sign(np.asarray(current, dtype=np.float64)), np.sign(np.asarray(previous, dtype=np.float64))
    if any(signs[0][i] == 0 or signs[0][i] != signs[1][i] for i in top):
        return 0
    if _unresolved(current, top):
        return 0
    return max(at)


def _unresolved(values: np.ndarray, top: set[int]) -> bool:
    """Return True when the estimate holds an even split that may hide or reorder a top feature.

    SHAP's Partition explainer gives each feature of a cluster it has not expanded yet the same
    share of the cluster's credit. So a group of features sharing one exact nonzero value is most
    likely such a cluster: if a top feature is in it, the top's order is not known yet; if the
    group's credit in total is at least the smallest top feature's, a feature inside it may be
    larger than that top feature (a 120-word text's strongest word was found this way: its
    cluster of 8 words showed 0.047 each beside a resolved 0.049).
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.abs(v)
    tol = 1e-9 * float(a.max()) + 1e-15
    smallest = min(float(a[i]) for i in top)
    for i in range(v.size):
        group = np.abs(v - v[i]) <= tol
        size = int(group.sum())
        if size > 1 and a[i] > tol and (i in top or size * a[i] >= smallest - tol):
            return True
    return False


def grow(estimate: Callable[[int], Estimate], budgets: list[int], rows: Callable[[], int], unit: str,
         first: bool = False) -> Grown:
    """Run `estimate` at each budget in turn until the top has settled (see the module doc); return the run."""
    grown = Grown(unit=unit, cap=budgets[-1])
    previous: Estimate | None = None
    for b in budgets:
        before = rows()
        current = estimate(b)
        grown.rounds.append(b)
        grown.rows.append(rows() - before)
        grown.estimate = current
        if current.exact:
            grown.stopped, grown.since = "exact", None
            return grown
        depth = same_top(previous.values, current.values, first=first) if previous is not None else 0
        if depth:
            grown.depth = depth
            if grown.since is None:
                grown.since = grown.rounds[-2]
            if current.stable():
                grown.stopped = "settled"
                return grown
        else:
            grown.since = None
        previous = current
    grown.stopped = "cap"
    return grown


def grow_shap(run: Callable[[int], tuple[np.ndarray, float, bool]], cap: int, rows: Callable[[], int]) -> Grown:
    """Return SHAP's adaptive run: `run(b)` is the Partition explainer at max_evals=b over a memo of scored rows.

    The stability statistic at b compares the values with those at max(4, b // 2), as the
    `stability` self-check does: an earlier round's values, or else a replay of rows already
    scored, so it costs no model rows.
    """
    seen: dict[int, np.ndarray] = {}

    def estimate(b: int) -> Estimate:
        values, base, exact = run(b)
        seen[b] = values

        def stable() -> bool:
            h = max(4, b // 2)
            if h not in seen:
                seen[h] = run(h)[0]
            return stability.stability(values, seen[h], "", first=True).passed

        return Estimate(values, stable, exact, base)

    grown = grow(estimate, schedule(START_SHAP, cap), rows, "evaluations", first=True)
    grown.values_at = seen  # the self-check's half-budget values are often here already
    return grown


def grow_lime(
    evaluate: Callable[[np.ndarray], np.ndarray],
    data: np.ndarray,
    fit: Callable[[int, np.ndarray], np.ndarray],
    stable: Callable[[int, np.ndarray, np.ndarray], bool],
    rows: Callable[[], int],
) -> tuple[Grown, np.ndarray]:
    """Return LIME's adaptive run and the labels of the neighbours it scored.

    `data` is the one draw of the cap's neighbours; round b scores rows [previous b, b) through
    `evaluate`, then `fit(b, labels)` returns the surrogate's weights on the first b neighbours
    and `stable(b, labels, weights)` the stability self-check's verdict on them.
    """
    scored: list[np.ndarray] = []

    def estimate(b: int) -> Estimate:
        have = sum(len(x) for x in scored)
        scored.append(np.asarray(evaluate(data[have:b].astype(bool))).reshape(-1, 1))
        labels = np.concatenate(scored)
        values = fit(b, labels)
        return Estimate(values, lambda: stable(b, labels, values), payload=labels)

    grown = grow(estimate, schedule(lime_start(data.shape[1]), len(data)), rows, "samples")
    return grown, grown.kept.payload
