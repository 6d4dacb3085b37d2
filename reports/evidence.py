"""Honest colour: what a score measures, whether there is any evidence to colour, and token text as people read it.

An explanation has no evidence when the model's output barely moves between the input and the
baseline (|f(x) - f(baseline)| below NO_EVIDENCE in the method's output units), or, when the
method does not report that change, when its scores add up (in absolute value) to less than
NO_EVIDENCE. Such a card is greyed and says so instead of stretching noise to full colour.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .constants import NO_EVIDENCE, UNITLESS, units
from .encode import fmt, number

if TYPE_CHECKING:
    from explain.results.explanation import Explanation

_BPE_SPACE = re.compile("^[\u0120\u2581]")  # GPT-2 "Ġ", sentencepiece "▁": a leading space


def clean_token(t: str) -> str:
    """Return a sub-word token as a reader sees it: no BPE markers ("Ġnight" -> " night", "##ing" -> "ing")."""
    t = str(t)
    if t.startswith("##") and len(t) > 2:
        return t[2:]
    t = _BPE_SPACE.sub(" ", t)
    return t.replace("\u010a", "\n").replace("\u0109", "\t").replace("\u0120", " ")


def output_change(e: Explanation) -> float | None:
    """Return f(x) - f(baseline) as the method reported it (IG output change, SHAP output - base value), or None."""
    c = e.checks or {}
    if number(c.get("output_change")) is not None:
        return number(c.get("output_change"))
    out, base = number(c.get("output")), number(c.get("base_value"))
    if out is not None and base is not None:
        return out - base
    return None


def score_units(e: Explanation) -> str:
    """Return what one score of `e` measures, e.g. 'change in p(positive)'."""
    return units(e.method, (e.settings or {}).get("output"), clean_token(e.target.label).strip() or "target")


def no_evidence(e: Explanation) -> str | None:
    """Return a sentence when `e` holds no evidence to colour (see the module doc), else None."""
    if e.method in UNITLESS or np.size(e.scores) == 0:
        return None
    change = output_change(e)
    baseline = (e.settings or {}).get("baseline")
    against = f"the baseline ({baseline})" if isinstance(baseline, str) and baseline else "the baseline"
    if change is not None and abs(change) < NO_EVIDENCE:
        return (f"No evidence: the output moves only {fmt(abs(change), 2)} between the input and {against} "
                f"(below {fmt(NO_EVIDENCE, 2)}), so these scores are noise and are shown grey.")
    total = float(np.abs(np.asarray(e.scores, dtype=np.float64)).sum())
    if change is None and total < NO_EVIDENCE:
        return (f"No evidence: the scores add up to {fmt(total, 2)} in absolute value (below {fmt(NO_EVIDENCE, 2)}), "
                "so they are noise and are shown grey.")
    return None


def cost_text(e: Explanation) -> str:
    """Return the cost of `e` as '0.12 s · 40 rows, 32 from cache' (rows asked for, cache hits separately)."""
    rows, cached = int(e.rows), int(e.cached_rows)
    total = rows + cached
    text = f"{fmt(round(float(e.seconds), 4), 3)} s · {total:,} row{'' if total == 1 else 's'}"
    return text + (f", {cached:,} from cache" if cached else "")


def scale_groups(exps: list[Explanation]) -> list[dict[str, Any]]:
    """Return per explanation {'units', 'max'}: methods of one target in the same units share one max |score|.

    Explanations without evidence keep their own max (they are drawn grey anyway), so noise does not set the scale.
    """
    maxima: dict[str, float] = {}
    out = []
    for e in exps:
        u = score_units(e)
        m = float(np.abs(np.asarray(e.scores, dtype=np.float64)).max()) if np.size(e.scores) else 0.0
        if no_evidence(e) is None and e.granularity != "pixel":
            maxima[u] = max(maxima.get(u, 0.0), m)
        out.append({"units": u, "own": m})
    for d, e in zip(out, exps):
        shared = maxima.get(str(d["units"])) if no_evidence(e) is None and e.granularity != "pixel" else None
        d["max"] = shared or d["own"]
        d["shared"] = bool(shared) and sum(1 for x in out if x["units"] == d["units"]) > 1
    return out
