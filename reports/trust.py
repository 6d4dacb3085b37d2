"""Can this explanation be trusted? The per-method trust panel of each target, from metrics and self-checks.

`explain.metrics.evaluate` writes its figures into each Explanation's `metrics` (and curves into
`extras`); the methods write their own figures into `checks` and their verdicts into `self_checks`. This module turns them into what
the page shows: each faithfulness figure beside its random-order baseline with which way is
better, the method's self-check, the sanity check (flagged or not), agreement with the other
methods, and rationale hits. Runs without any metric get no panel at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from .encode import number
from .quality import CHECK_HELP, verdicts
from .removal_text import phrase

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Results


@dataclass(frozen=True)
class Figure:
    """One trust figure: its check key, title, which way is better ('lower' | 'higher' | ''), meaning."""

    key: str
    title: str
    better: str
    help: str


FAITHFULNESS = (
    Figure("deletion_auc", "Deletion AUC", "lower",
           "Area under the model's output as the features this method ranks first are removed first. "
           "Lower is better: removing what matters should make the answer collapse fast. "
           "Compare with the same curve for random orders."),
    Figure("insertion_auc", "Insertion AUC", "higher",
           "Area under the model's output as the top-ranked features are put back into an emptied input. "
           "Higher is better: those features alone should bring the answer back."),
    Figure("comprehensiveness", "Comprehensiveness", "higher",
           "ERASER: drop of the output when the top 1/5/10/20/50 % features are removed (mean over bins). "
           "Higher is better: the features it ranks first mattered."),
    Figure("sufficiency", "Sufficiency", "lower",
           "ERASER: drop of the output when only the top 1/5/10/20/50 % features are kept (mean over bins). "
           "Lower is better: those features suffice on their own."),
)
# The methods' self-checks (Explanation.self_checks), by the check's name: verdicts, not figures to rank.
COMPLETENESS = Figure("completeness", "Completeness", "", CHECK_HELP["completeness"])
STABILITY = Figure("stability", "Stability", "", CHECK_HELP["stability"])
SURROGATE_FIT = Figure("surrogate_fit", "Surrogate fit", "", CHECK_HELP["surrogate_fit"])
SELF: dict[str, tuple[Figure, ...]] = {
    "ig": (COMPLETENESS,),
    "shap": (STABILITY,),
    "lime": (SURROGATE_FIT, STABILITY),
}
SANITY = Figure("sanity_rank_corr", "Sanity ρ", "lower",
                "Model randomisation test (Adebayo et al. 2018): rank correlation between this explanation and the same "
                "method's explanation of a model whose layers were re-drawn at random. Lower |ρ| is better; a flagged "
                "method barely changes, so it describes the input rather than what the model learnt.")
AGREEMENT = Figure("agreement_spearman", "Agreement ρ", "higher",
                   "Mean Spearman rank correlation with the other methods on this input and target (top-k overlap "
                   "beside it). Higher means the methods tell the same story; disagreement is a reason to read the "
                   "faithfulness figures before trusting either.")
RATIONALE = (
    Figure("rationale_precision", "Rationale precision", "higher",
           "Share of the top-k features (k = the rationale's size) that lie in the rationale you gave. Higher is better."),
    Figure("pointing_game", "Pointing game", "higher",
           "1 when the single most attributed feature lies in the rationale, 0 when not (Zhang et al. 2016). "
           "Higher is better; across inputs: the hit rate."),
)
CURVES = ("curve_fractions", "deletion_curve", "insertion_curve", "deletion_curve_random", "insertion_curve_random")


def metric_keys() -> tuple[str, ...]:
    """Return the checks explain.metrics writes (its METRIC_KEYS), the ones a trust panel reads."""
    from explain.metrics.summary import METRIC_KEYS

    return tuple(METRIC_KEYS)


def definitions() -> dict[str, Any]:
    """Return every figure's title, direction and meaning, keyed by check name (sent to the page once)."""
    figs = [*FAITHFULNESS, COMPLETENESS, STABILITY, SURROGATE_FIT, SANITY, AGREEMENT, *RATIONALE]
    return {f.key: {"title": f.title, "better": f.better, "help": f.help} for f in figs}


def has_metrics(results: Results) -> bool:
    """Return True when any explanation carries a metric check (evaluate() was run on these results)."""
    keys = set(metric_keys())
    return any(keys & set(e.metrics or {}) for e in results)


def beats(key: str, value: float | None, chance: float | None) -> bool | None:
    """Return whether `value` beats its random-order baseline (direction from FAITHFULNESS), None if unknown."""
    if value is None or chance is None:
        return None
    better = next(f.better for f in FAITHFULNESS if f.key == key)
    return value < chance if better == "lower" else value > chance


def self_checks(e: Explanation) -> list[dict[str, Any]] | None:
    """Return the method's self-checks as [{'key', 'ok', 'v', 'shown', 's'}] (ok None: a figure without a verdict), or None."""
    out = [{"key": v.name, "ok": v.passed, "v": v.value, "shown": v.shown, "s": v.sentence} for v in verdicts(e)]
    return out or None


@dataclass
class TrustContext:
    """What every input's panel needs from the whole run: whether to draw one, and per-pair agreement rows."""

    enabled: bool
    pairs: dict[tuple[int, int, int | None], list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Results) -> TrustContext:
        """Return the context of `results` (disabled when no metric was computed)."""
        if not has_metrics(results):
            return cls(False)
        rows = ((results.run.get("metrics") or {}).get("agreement") or {}).get("per_input") or []
        pairs: dict[tuple[int, int, int | None], list[dict[str, Any]]] = {}
        for r in rows if isinstance(rows, list) else []:
            if isinstance(r, Mapping) and "input" in r and "a" in r and "b" in r:
                pos = r.get("position")
                key = (int(r["input"]), int(r.get("target_index", 0)), None if pos is None else int(pos))
                pairs.setdefault(key, []).append(dict(r))
        return cls(True, pairs)


def _agreement(e: Explanation, ctx: TrustContext) -> dict[str, Any] | None:
    rho = number((e.metrics or {}).get(AGREEMENT.key))
    rows = [r for r in ctx.pairs.get((int(e.input), int(e.target.index), e.target.position), []) if e.method in (r["a"], r["b"])]
    if rho is None and not rows:
        return None
    others = [[r["b"] if r["a"] == e.method else r["a"], number(r.get("spearman")), number(r.get("top_k"))] for r in rows]
    tops = [t for _, _, t in others if t is not None]
    return {"rho": rho, "top": float(np.mean(tops)) if tops else None, "pairs": others}


def _curves(e: Explanation) -> dict[str, list[float]] | None:
    x = e.extras or {}
    arrays = [np.ravel(np.asarray(x[k], dtype=np.float64)) if k in x and np.size(x[k]) else None for k in CURVES]
    if any(a is None for a in arrays[:3]) or len({a.size for a in arrays if a is not None}) != 1:
        return None
    out = {k: [round(float(v), 5) for v in a] for k, a in zip(("x", "del", "ins", "del_r", "ins_r"), arrays) if a is not None}
    return out


def trust_row(e: Explanation, ctx: TrustContext) -> dict[str, Any]:
    """Return one method's row of the panel: faithfulness vs random, self-check, sanity, agreement, rationale, curves."""
    c = dict(e.metrics or {})  # evaluate()'s figures live in metrics (schema 1 files are moved there on reading)
    faith = []
    for f in FAITHFULNESS:
        v, r = number(c.get(f.key)), number(c.get(f.key + "_random"))
        if v is not None:
            faith.append({"key": f.key, "v": v, "r": r, "ok": beats(f.key, v, r)})
    rho = number(c.get(SANITY.key))
    flag = number(c.get("sanity_flag"))
    rat = {f.key: number(c.get(f.key)) for f in RATIONALE if number(c.get(f.key)) is not None}
    row: dict[str, Any] = {
        "m": e.method,
        "faith": faith,
        "self": self_checks(e),
        "sanity": None if rho is None and flag is None else {"rho": rho, "flag": bool(flag is not None and flag >= 0.5)},
        "agree": _agreement(e, ctx),
        "rat": rat or None,
        "curves": _curves(e),
    }
    row["metrics"] = bool(faith or row["sanity"] or row["agree"] or rat)
    return row


def trust_doc(exps: Sequence[Explanation], ctx: TrustContext) -> dict[str, Any] | None:
    """Return the panel of one target's explanations, or None when the run has no metrics."""
    if not ctx.enabled or not exps:
        return None
    rows = [trust_row(e, ctx) for e in exps]
    if not any(r["metrics"] or r["self"] for r in rows):
        return None
    removal = next((phrase(e.family, str(e.extras.get("faithfulness_removal"))) for e in exps
                    if (e.extras or {}).get("faithfulness_removal")), None)
    output = next((str(e.extras.get("faithfulness_output")) for e in exps if (e.extras or {}).get("faithfulness_output")), None)
    return {"rows": rows, "removal": removal, "output": output}


def per_method_values(results: Iterable[Explanation], key: str) -> dict[str, list[float]]:
    """Return {method: finite values of metric `key` (Explanation.metrics)}, methods in run order."""
    out: dict[str, list[float]] = {}
    for e in results:
        v = number((e.metrics or {}).get(key))
        if v is not None:
            out.setdefault(e.method, []).append(v)
    return out
