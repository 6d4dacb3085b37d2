"""Self-checks: each method's verdicts on its own estimate as the report shows them, and the run-level series.

A self-check is a test the method ran on its own estimate that could fail (Explanation.self_checks):
IG `completeness`, SHAP `stability`, LIME `surrogate_fit` and `stability`. SHAP's efficiency gap is
not one: the Partition explainer makes the values add up by construction, so it is never shown as a
check. Results written before self-checks existed (schema 1) get IG's completeness judged from its
relative convergence delta, and LIME's R² shown as a figure without a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .encode import fmt, number

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Results

from .constants import IG_DELTA_LIMIT, METHOD_TITLES

SHORT = {"ig": "IG", "shap": "SHAP", "lime": "LIME"}  # the names the methods' own sentences use
CHECK_TITLES = {"completeness": "completeness", "stability": "stability", "surrogate_fit": "surrogate fit", "evidence": "evidence"}
# The 'evidence' self-check says whether anything moves the output at all: failed, the explanation is
# drawn grey as "no evidence" (evidence.weak_evidence), not flagged unreliable.
STATE_CHECKS = ("evidence",)
CHECK_HELP = {
    "evidence": "Does anything here move the output? It fails when the scores add up to almost nothing and the output "
                "does not move between the input and the baseline: there is nothing to rely on or to doubt, and the card is grey.",
    "completeness": "IG's scores must add up to f(x) − f(baseline) (the completeness axiom); a gap larger than "
                    "the tolerance means the path integral needs more steps.",
    "stability": "Two independent estimates must pick the same top features (top-k average overlap at least 0.75): "
                 "SHAP at its full and at half its evaluation budget, LIME on two halves of its neighbours. "
                 "If they disagree, the budget was too small for this input and the top feature is a guess.",
    "surrogate_fit": "LIME's local linear surrogate must reproduce the model on the perturbed neighbours (weighted R² "
                     "at least 0.5); below it the model is not close to linear in these features here and the weights "
                     "are a poor summary.",
}

# What a check means for one method (the generic CHECK_HELP names every method that runs it).
METHOD_HELP = {
    ("shap", "stability"): "The SHAP values at the full and at half the evaluation budget must pick the same top features "
                           "(top-k average overlap at least 0.75; an exact run passes). If they disagree, the budget was too "
                           "small for this input and the top feature is a guess.",
    ("lime", "stability"): "Two surrogates fitted on two independent halves of the neighbours must pick the same top features "
                           "(top-k average overlap at least 0.75). If they disagree, there were too few neighbours: the "
                           "weights are noise that happens to fit.",
}


@dataclass(frozen=True)
class Verdict:
    """One self-check as the page shows it: passed (True / False; None for a figure without a verdict) and a sentence."""

    method: str
    name: str
    passed: bool | None
    value: float | None
    threshold: float | None
    sentence: str  # starts with the method and check, e.g. "SHAP stability: the values at ..."
    shown: str  # the figure in a few characters, e.g. "0.83", "R² 0.71", "0.3% off"

    @property
    def help(self) -> str:
        """Return what the check would catch, in a sentence or two."""
        return METHOD_HELP.get((self.method, self.name)) or CHECK_HELP.get(self.name, "")


def check_title(name: str) -> str:
    """Return a self-check's name as words ('surrogate_fit' -> 'surrogate fit')."""
    return CHECK_TITLES.get(name, name.replace("_", " "))


def check_value(e: Explanation, name: str) -> float | None:
    """Return the method's figure `name` of `e` (its checks, else the value of a self-check of that name), or None."""
    v = number(e.checks.get(name)) if e.checks else None
    if v is None:
        v = next((number(c.value) for c in e.self_checks if c.name == name), None)
    return v


def _sentence(e: Explanation, name: str, text: str) -> str:
    short = SHORT.get(e.method, METHOD_TITLES.get(e.method, e.method))
    text = text.strip()
    if text and not text.endswith((".", "!", "?")):
        text += "."
    if text.startswith(short + " "):  # IG's own sentences name the method and say what was checked
        return text
    return f"{short} {check_title(name)}: {text}"


def _shown(e: Explanation, name: str, value: float | None) -> str:
    if name == "completeness":
        rel = check_value(e, "delta_relative")
        return f"{fmt(rel * 100, 2)}% off" if rel is not None else fmt(value, 2)
    if name == "surrogate_fit":
        return f"R² {fmt(value, 2)}"
    return fmt(value, 2)


def verdicts(e: Explanation) -> list[Verdict]:
    """Return the self-checks of `e` with their sentences (old results: IG's completeness from its delta, LIME's R²)."""
    out = [Verdict(e.method, c.name, bool(c.passed), number(c.value), number(c.threshold), _sentence(e, c.name, c.sentence),
                   _shown(e, c.name, number(c.value))) for c in e.self_checks]
    names = {v.name for v in out}
    rel = check_value(e, "delta_relative")
    if e.method == "ig" and rel is not None and "completeness" not in names:
        ok = rel <= IG_DELTA_LIMIT
        text = (f"IG is {'complete' if ok else 'incomplete'}: the scores add up to f(x) − f(baseline) = "
                f"{fmt((e.checks or {}).get('output_change'), 3)} within {fmt(rel * 100, 2)}% (limit {IG_DELTA_LIMIT:.0%}).")
        out.append(Verdict("ig", "completeness", ok, rel, IG_DELTA_LIMIT, text, _shown(e, "completeness", rel)))
    r2 = check_value(e, "score")
    if e.method == "lime" and r2 is not None and "surrogate_fit" not in names:
        text = (f"LIME's local linear surrogate explains R² = {fmt(r2, 2)} of the model's variation on the perturbed "
                "samples (1 = perfectly; this file holds no verdict).")
        out.append(Verdict("lime", "surrogate_fit", None, r2, None, text, _shown(e, "surrogate_fit", r2)))
    return out


def flagged(e: Explanation) -> str | None:
    """Return a short flag when `e` failed a self-check (not the evidence check: that is a grey card), else None."""
    failed = [v.name for v in verdicts(e) if v.passed is False and v.name not in STATE_CHECKS]
    if not failed:
        return None
    return f"{METHOD_TITLES.get(e.method, e.method)}: {', '.join(check_title(n) for n in failed)} failed"


def input_flags(exps: Iterable[Explanation]) -> list[str]:
    """Return the flags of an input's explanations: per method the one with the most failed checks, in method order."""
    worst: dict[str, tuple[int, str]] = {}
    for e in exps:
        flag = flagged(e)
        if flag is None:
            continue
        size = sum(1 for v in verdicts(e) if v.passed is False and v.name not in STATE_CHECKS)
        if e.method not in worst or size > worst[e.method][0]:
            worst[e.method] = (size, flag)
    return [f for _, f in worst.values()]


def check_lines(e: Explanation) -> list[dict[str, Any]]:
    """Return the method's self-checks as sentences with a verdict ('passed' / 'failed', or 'figure' without one)."""
    label = {True: "passed", False: "failed", None: "figure"}
    return [{"label": "no evidence" if v.name in STATE_CHECKS and v.passed is False else label[v.passed], "value": v.sentence,
             "help": v.help, "bad": v.passed is False and v.name not in STATE_CHECKS} for v in verdicts(e)]


@dataclass(frozen=True)
class Series:
    """One run-level figure: the method and figure it reads, the self-check that judges it, and its one-line meaning."""

    method: str
    check: str  # the figure: a key of Explanation.checks (or a self-check's value)
    verdict: str  # the SelfCheck that judges it
    title: str
    help: str
    above_is_bad: bool
    log: bool
    same: bool  # the verdict compares this very figure with its threshold (so the threshold is a line on its axis)

    @property
    def key(self) -> str:
        """Return a key unique among the series (LIME has two)."""
        return f"{self.method}-{self.verdict}"


SERIES = (
    Series("ig", "delta_relative", "completeness", "IG: completeness gap",
           "How far the summed attributions miss f(x) − f(baseline), as a share of it. IG fails its completeness check "
           "when the gap exceeds its tolerance (1% of the output change, at least 1e-4): the path integral needs more steps.",
           True, True, False),
    Series("shap", "stability", "stability", "SHAP: stability",
           "Top-k average overlap of the SHAP values at the full and at half the evaluation budget (1 = the same top "
           "features; an exact run is 1). Below 0.75 the budget was too small for this input and the top feature is a guess.",
           False, False, True),
    Series("lime", "score", "surrogate_fit", "LIME: surrogate fit (R²)",
           "How well LIME's local linear surrogate reproduces the model on its perturbed neighbours (weighted R², "
           "1 = perfectly). Below 0.5 the model is not close to linear in these features here: the weights summarise it poorly.",
           False, False, True),
    Series("lime", "stability", "stability", "LIME: stability",
           "Top-k average overlap of two surrogates fitted on two independent halves of the neighbours (1 = the same top "
           "features). Below 0.75 there were too few neighbours for this input and the weights are noise that happens to fit.",
           False, False, True),
)


def _limit(e: Explanation, s: Series, verdict: Verdict | None) -> float | None:
    """Return the threshold on the series' axis for `e` (None when its verdict compares another figure)."""
    if verdict is None or verdict.threshold is None or not (s.same or not e.self_checks):
        return None  # old IG results (no self_checks) judge delta_relative itself: their limit is on this axis
    return round(verdict.threshold, 12)


def series_limit(exps: Iterable[Explanation], s: Series) -> float | None:
    """Return the one threshold every judged explanation of series `s` shares (drawn as a line), else None."""
    limits = {_limit(e, s, next((x for x in verdicts(e) if x.name == s.verdict), None))
              for e in exps if e.method == s.method and check_value(e, s.check) is not None}
    return next(iter(limits)) if len(limits) == 1 else None


def run_series(results: Results) -> list[dict[str, Any]]:
    """Return the run-level self-check figures present in `results`, one point per explanation, bad where its check failed."""
    out = []
    for s in SERIES:
        xs, ys, texts, bad, limits = [], [], [], [], set()
        for e in results:
            if e.method != s.method:
                continue
            v = check_value(e, s.check)
            if v is None:
                continue
            verdict = next((x for x in verdicts(e) if x.name == s.verdict), None)
            xs.append(e.input)
            ys.append(abs(v) if s.log else v)
            texts.append(f"input {e.input} · {e.target.label}")
            bad.append(bool(verdict is not None and verdict.passed is False))
            limits.add(_limit(e, s, verdict))
        if not xs:
            continue
        limit = next(iter(limits)) if len(limits) == 1 else None  # one threshold for every point: drawn as a line
        summary = f"{len(xs)} explanation{'s' if len(xs) != 1 else ''}, {sum(bad)} failed the {check_title(s.verdict)} check"
        if limit is not None:
            summary += f" ({'above' if s.above_is_bad else 'below'} {fmt(limit, 2)})"
        summary += f", median {fmt(sorted(ys)[len(ys) // 2], 3)}"
        out.append({"key": s.key, "title": s.title, "help": s.help, "summary": summary, "limit": limit, "log": s.log,
                    "x": xs, "y": ys, "text": texts, "bad": bad})
    return out


def checks_sentence(exps: Iterable[Explanation]) -> str:
    """Return every self-check of these explanations in one line: 'IG completeness ✓ 0.39% off · LIME surrogate fit ✗ R² 0.38'."""
    parts = []
    for e in exps:
        short = SHORT.get(e.method, METHOD_TITLES.get(e.method, e.method))
        for v in verdicts(e):
            if v.name in STATE_CHECKS and v.passed is not False:
                continue  # "there is evidence" goes without saying
            mark = {True: "✓", False: "✗", None: ""}[v.passed]
            parts.append(f"{short} {check_title(v.name)} {mark} {v.shown}".replace("  ", " ").strip())
    return " · ".join(dict.fromkeys(parts))
