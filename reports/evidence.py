"""Honest colour: what a score measures, how strong the evidence is, one colour scale per report, token text as people read it.

Colour means magnitude in the output's own units (probability, logit, log-probability): every
card of a report that shares those units is drawn on one scale, stated with numbers, so a word
that moves p(neutral) by 0.01 is pale next to one that moves p(negative) by 0.9.

An explanation holds *no evidence* when every score is 0 or its method's `evidence` self-check
failed (nothing moves the output), and *weak evidence* when its largest
|score| is within WEAK times the noise floor its method measured on this input (SHAP: how far a
value moved between half and full budget; LIME: half the largest disagreement of two fits on
halves of the neighbours; IG: its completeness gap). Such a card is drawn grey with a sentence
instead of colours. Methods that measure no floor are judged on their scores alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .constants import UNITLESS, WEAK, units
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


def output_kind(e: Explanation) -> str:
    """Return what the method's scores are changes of ('probability', 'logit', 'log-probability'; '' when unitless)."""
    if e.method in UNITLESS:
        return ""
    return str((e.settings or {}).get("output") or "output")


def score_units(e: Explanation) -> str:
    """Return what one score of `e` measures, e.g. 'contribution to p(positive)'."""
    return units(e.method, (e.settings or {}).get("output"), clean_token(e.target.label).strip() or "target")


def noise_floor(e: Explanation) -> float | None:
    """Return the noise floor the method measured for `e` in its output units (see the module doc), or None."""
    c = e.checks or {}
    floor = number(c.get("noise_floor"))
    if floor is None and e.method == "ig":
        floor = number(c.get("convergence_delta"))
    return None if floor is None else abs(floor)


def strength(e: Explanation) -> float:
    """Return the largest |score| of `e` (0 when it has none)."""
    s = np.asarray(e.scores, dtype=np.float64)
    return float(np.nanmax(np.abs(s))) if s.size and np.isfinite(s).any() else 0.0


def _feature(e: Explanation) -> str:
    return "region" if e.granularity == "pixel" else "token" if e.granularity == "token" else "word"


def weak_evidence(e: Explanation) -> str | None:
    """Return a sentence when `e` holds no or only weak evidence to colour (see the module doc), else None."""
    failed = next((c for c in e.self_checks if c.name == "evidence" and not c.passed), None)
    if failed is not None:  # the method's own verdict: nothing moves the output
        text = failed.sentence.strip()
        text = text[len("no evidence:"):].strip() if text.lower().startswith("no evidence:") else text
        return f"No evidence: {text[:1].upper() + text[1:]}" + ("" if text.endswith(".") else ".")
    if e.method in UNITLESS or np.size(e.scores) == 0:
        return None
    top = strength(e)
    what = score_units(e).replace("contribution to ", "")
    if top == 0:
        return f"No evidence: every score is 0 (no {_feature(e)} moves {what}), so there is nothing to colour."
    floor = noise_floor(e)
    if floor is not None and top <= WEAK * floor:
        return (f"Weak evidence: no {_feature(e)} moves {what} by more than {fmt(top, 2)}, within the noise this method "
                f"measured on this input (±{fmt(floor, 2)}), so the scores are shown grey.")
    return None


def cost_text(e: Explanation) -> str:
    """Return the cost of `e` as '0.12 s · 40 rows, 32 from cache' (rows asked for, cache hits separately)."""
    rows, cached = int(e.rows), int(e.cached_rows)
    total = rows + cached
    text = f"{fmt(round(float(e.seconds), 4), 3)} s · {total:,} row{'' if total == 1 else 's'}"
    return text + (f", {cached:,} from cache" if cached else "")


def report_scales(exps: Iterable[Explanation]) -> dict[str, float]:
    """Return the report's colour scale per output kind: the largest |score| of any word or token explanation with evidence.

    Pixel maps keep a scale of their own (stated under each panel); unitless methods (attention
    relevance, Grad-CAM) are not changes of the output and are not on it.
    """
    out: dict[str, float] = {}
    for e in exps:
        kind = output_kind(e)
        if not kind or e.granularity == "pixel" or weak_evidence(e) is not None:
            continue
        out[kind] = max(out.get(kind, 0.0), strength(e))
    return out


def scale_groups(exps: list[Explanation], report: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Return per explanation {'units', 'max', 'own', 'shared'}: the colour scale it is drawn on.

    Word and token scores in output units are drawn on the report's scale for their kind
    (`report`, from report_scales; 'shared' True); `own` is the largest |score| among this
    target's methods in the same units, for the page's "this input" scale. Unitless methods and
    pixel maps keep their own.
    """
    report = report if report is not None else report_scales(exps)
    maxima: dict[str, float] = {}
    out = []
    for e in exps:
        u = score_units(e)
        m = strength(e)
        if weak_evidence(e) is None and e.granularity != "pixel":
            maxima[u] = max(maxima.get(u, 0.0), m)
        out.append({"units": u, "own": m})
    for d, e in zip(out, exps):
        own = maxima.get(str(d["units"])) or d["own"]
        kind = output_kind(e)
        scale = report.get(kind) if kind and e.granularity != "pixel" else None
        d["own"] = own
        d["max"] = scale or own
        d["shared"] = bool(scale)
    return out
