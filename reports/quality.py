"""Quality checks: what each method's check means, when it is flagged, and the run-level series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .encode import fmt, number

if TYPE_CHECKING:
    from explain.explanation import Explanation, Results

from .constants import IG_DELTA_LIMIT, METHOD_TITLES, SHAP_GAP_LIMIT


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
    verdict: str = ""  # the SelfCheck name that judges this figure, when the method writes one


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
        "surrogate_fit",
    ),
)


def check_value(e: Explanation, name: str) -> float | None:
    """Return check `name` of `e` as a finite float, or None when absent."""
    return number(e.checks.get(name)) if e.checks else None


def flagged(e: Explanation) -> str | None:
    """Return a short flag when `e` failed a self-check (or, without verdicts, a check is out of bounds), else None."""
    failed = [c for c in e.self_checks if not c.passed]
    if failed:
        return f"{METHOD_TITLES.get(e.method, e.method)}: {', '.join(c.name.replace('_', ' ') for c in failed)} failed"
    if e.self_checks:
        return None
    if e.method == "ig":
        d = check_value(e, "delta_relative")
        if d is not None and d > IG_DELTA_LIMIT:
            return f"IG incomplete ({d:.0%} off)" if d < 100 else f"IG incomplete ({fmt(d, 2)}× off)"
    if e.method == "shap":
        g = check_value(e, "efficiency_gap")
        if g is not None and abs(g) > SHAP_GAP_LIMIT:
            return f"SHAP does not add up (gap {fmt(abs(g), 2)})"
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
    """Return the method's self-checks as sentences with a verdict, then its other figures in words."""
    lines = [_line("passed" if c.passed else "failed", c.sentence, "", not c.passed) for c in e.self_checks]
    c = dict(e.checks or {})
    names = {x.name for x in e.self_checks}
    if e.method == "ig" and "convergence_delta" in c and "completeness" not in names:
        rel = check_value(e, "delta_relative")
        ok = rel is None or rel <= IG_DELTA_LIMIT
        text = (f"the scores add up to f(x) − f(baseline) = {fmt(c.get('output_change'), 3)} within "
                f"{fmt((rel or 0) * 100, 2)}% (limit {IG_DELTA_LIMIT:.0%})")
        lines.append(_line("passed" if ok else "failed", f"IG is {'complete' if ok else 'incomplete'}: {text}.", SERIES[0].help, not ok))
    if e.method == "shap" and "efficiency_gap" in c and not names:
        gap = check_value(e, "efficiency_gap")
        ok = gap is None or abs(gap) <= SHAP_GAP_LIMIT
        text = (f"base value {fmt(c.get('base_value'), 3)} plus the scores gives {fmt(c.get('output'), 3)} "
                f"(off by {fmt(abs(gap or 0), 2)}, limit {fmt(SHAP_GAP_LIMIT, 2)})")
        lines.append(_line("passed" if ok else "failed", f"SHAP values {'add up' if ok else 'do not add up'}: {text}.", SERIES[1].help, not ok))
    if e.method == "lime" and "score" in c and "surrogate_fit" not in names:
        lines.append(_line("figure", f"LIME's local linear surrogate explains R² = {fmt(c['score'], 2)} of the model's variation "
                                     "on the perturbed samples (1 = perfectly).", SERIES[2].help, False))
    return lines


def _line(label: str, value: str, meaning: str, bad: bool) -> dict[str, Any]:
    return {"label": label, "value": value, "help": meaning, "bad": bool(bad)}


def run_series(results: Results) -> list[dict[str, Any]]:
    """Return the run-level quality figures present in `results`, one point per explanation."""
    out = []
    for s in SERIES:
        xs, ys, texts, bad = [], [], [], []
        limit = s.limit
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
            # A self-check with a verdict on this figure (e.g. LIME's surrogate fit) decides, with its own threshold.
            verdict = next((c for c in e.self_checks if c.name == s.verdict), None) if s.verdict else None
            if verdict is not None:
                limit = float(verdict.threshold)
                bad.append(not verdict.passed)
            else:
                bad.append(limit is not None and (v > limit if s.above_is_bad else v < limit))
        if not xs:
            continue
        summary = f"{len(xs)} explanation{'s' if len(xs) != 1 else ''}"
        if limit is not None:
            summary += f", {sum(bad)} {'above' if s.above_is_bad else 'below'} {fmt(limit, 2)}"
        summary += f", median {fmt(sorted(ys)[len(ys) // 2], 3)}"
        out.append(
            {
                "key": s.method,
                "title": s.title,
                "help": s.help,
                "summary": summary,
                "limit": limit,
                "log": s.log,
                "x": xs,
                "y": ys,
                "text": texts,
                "bad": bad,
            }
        )
    return out
