"""Quality checks: what each method's check means, when it is flagged, and the run-level series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .encode import fmt, number

if TYPE_CHECKING:
    from explain.explanation import Explanation, Results

IG_DELTA_LIMIT = 0.05  # |convergence delta| / |f(x) - f(baseline)| above this: too few IG steps
SHAP_GAP_LIMIT = 1e-3  # |sum(SHAP) + base value - output| above this: values do not add up


@dataclass(frozen=True)
class Series:
    """One quality figure: which method and check it reads, its limit and its one-line meaning."""

    method: str
    check: str
    title: str
    help: str
    limit: float | None
    above_is_bad: bool
    log: bool


SERIES = (
    Series(
        "ig",
        "delta_relative",
        "IG: relative convergence delta",
        "How far the summed attributions miss f(x) − f(baseline), as a share of it; "
        f"above {IG_DELTA_LIMIT:.0%} the path integral needs more steps.",
        IG_DELTA_LIMIT,
        True,
        True,
    ),
    Series(
        "shap",
        "efficiency_gap",
        "SHAP: efficiency gap",
        "|sum of SHAP values + base value − model output|; SHAP values should add up to the output, "
        f"so anything above {SHAP_GAP_LIMIT:g} means too few evaluations.",
        SHAP_GAP_LIMIT,
        True,
        True,
    ),
    Series(
        "lime",
        "score",
        "LIME: surrogate fit (R²)",
        "How well LIME's local linear surrogate reproduces the model on the perturbed samples "
        "(1 = perfectly; near 0 = the weights explain little).",
        None,
        False,
        False,
    ),
)


def check_value(e: Explanation, name: str) -> float | None:
    """Return check `name` of `e` as a finite float, or None when absent."""
    return number(e.checks.get(name)) if e.checks else None


def flagged(e: Explanation) -> str | None:
    """Return a short flag when a quality check of `e` is out of bounds, else None."""
    if e.method == "ig":
        d = check_value(e, "delta_relative")
        if d is not None and d > IG_DELTA_LIMIT:
            return f"IG δ {d:.0%}" if d < 100 else f"IG δ {fmt(d, 2)}×"
    if e.method == "shap":
        g = check_value(e, "efficiency_gap")
        if g is not None and abs(g) > SHAP_GAP_LIMIT:
            return f"SHAP gap {fmt(abs(g), 2)}"
    return None


def input_flags(exps: Iterable[Explanation]) -> list[str]:
    """Return the flags of an input's explanations: the worst per method, in method order."""
    worst: dict[str, tuple[float, str]] = {}
    for e in exps:
        flag = flagged(e)
        if flag is None:
            continue
        size = abs(check_value(e, "delta_relative" if e.method == "ig" else "efficiency_gap") or 0.0)
        if e.method not in worst or size > worst[e.method][0]:
            worst[e.method] = (size, flag)
    return [f for _, f in worst.values()]


def check_lines(e: Explanation) -> list[dict[str, Any]]:
    """Return the checks of `e` as display lines: label, value, one-line meaning, and a bad flag."""
    c = dict(e.checks or {})
    lines: list[dict[str, Any]] = []
    if e.method == "ig" and "convergence_delta" in c:
        rel = check_value(e, "delta_relative")
        value = fmt(c["convergence_delta"], 3)
        if rel is not None:
            value += f" ({rel:.1%} of f(x) − f(baseline) = {fmt(c.get('output_change'), 3)})"
        lines.append(_line("Convergence δ", value, SERIES[0].help, rel is not None and rel > IG_DELTA_LIMIT))
        c = {k: v for k, v in c.items() if k not in ("convergence_delta", "delta_relative", "output_change")}
    if e.method == "shap" and "efficiency_gap" in c:
        gap = check_value(e, "efficiency_gap")
        value = f"{fmt(gap, 3)} (base {fmt(c.get('base_value'), 3)}, output {fmt(c.get('output'), 3)})"
        lines.append(_line("Efficiency gap", value, SERIES[1].help, gap is not None and abs(gap) > SHAP_GAP_LIMIT))
        c = {k: v for k, v in c.items() if k not in ("efficiency_gap", "base_value", "output")}
    if e.method == "lime" and "score" in c:
        value = f"{fmt(c['score'], 3)} (intercept {fmt(c.get('intercept'), 3)}, local prediction {fmt(c.get('local_prediction'), 3)})"
        lines.append(_line("Surrogate R²", value, SERIES[2].help, False))
        c = {k: v for k, v in c.items() if k not in ("score", "intercept", "local_prediction")}
    if c:  # what explain.metrics.evaluate() wrote is shown in the trust panel, not here
        from .trust import metric_keys

        c = {k: v for k, v in c.items() if k not in metric_keys()}
    for k, v in sorted(c.items()):  # the results file stores keys sorted: same order either way
        lines.append(_line(k.replace("_", " "), fmt(v, 4) if number(v) is not None else str(v), "", False))
    return lines


def _line(label: str, value: str, meaning: str, bad: bool) -> dict[str, Any]:
    return {"label": label, "value": value, "help": meaning, "bad": bool(bad)}


def run_series(results: Results) -> list[dict[str, Any]]:
    """Return the run-level quality figures present in `results`, one point per explanation."""
    out = []
    for s in SERIES:
        xs, ys, texts, bad = [], [], [], []
        for e in results:
            if e.method != s.method:
                continue
            v = check_value(e, s.check)
            if v is None:
                continue
            v = abs(v) if s.log else v
            xs.append(e.input)
            ys.append(v)
            texts.append(f"input {e.input} · {e.target.label}")
            bad.append(s.limit is not None and (v > s.limit if s.above_is_bad else v < s.limit))
        if not xs:
            continue
        summary = f"{len(xs)} explanation{'s' if len(xs) != 1 else ''}"
        if s.limit is not None:
            summary += f", {sum(bad)} above {fmt(s.limit, 2)}"
        else:
            summary += f", median {fmt(sorted(ys)[len(ys) // 2], 3)}"
        out.append(
            {
                "key": s.method,
                "title": s.title,
                "help": s.help,
                "summary": summary,
                "limit": s.limit,
                "log": s.log,
                "x": xs,
                "y": ys,
                "text": texts,
                "bad": bad,
            }
        )
    return out
