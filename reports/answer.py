"""The first screen: the run in one line, then per input the answer -- prediction, class probabilities,
true label and right/wrong, and the consensus explanation -- as plain HTML (drawn before any script runs).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .consensus import Consensus, consensus, main_group
from .constants import FIRST_SCREEN
from .data import method_title, target_groups, target_key
from .encode import esc, fmt, is_base64, number, signed
from .evidence import clean_token, report_scales, weak_evidence
from .overlay import overlay_html
from .quality import flagged
from .removal_text import run_sentence
from .words import strip_html, word_span

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, InputRecord, Results

TOP_CLASSES = 5  # probability bars shown per input (the rest summed as "other classes")
# The inputs table names a word when its consensus score is at least this share of the report's colour
# scale (it is visibly coloured); when no word is, it says how far the strongest one moves the answer.
WHY_SHARE = 0.2


def true_label(results: Results, r: InputRecord) -> str | None:
    """Return the input's true label: InputRecord.label when the schema has it, else run['labels'][index]."""
    v = getattr(r, "label", None)
    if v is None:
        v = (results.run.get("labels") or {}).get(str(int(r.index)))
    return None if v is None else str(v)


def class_probabilities(results: Results, r: InputRecord, exps: Sequence[Explanation]) -> list[tuple[str, float]]:
    """Return (label, probability) for every class known, most probable first.

    From InputRecord.probabilities when the schema has it, else run['probabilities'][index], else
    the targets the explanations hold (then only those classes are known).
    """
    labels = list(results.model.labels)
    probs = getattr(r, "probabilities", None)
    if probs is None:
        probs = (results.run.get("probabilities") or {}).get(str(int(r.index)))
    found: dict[str, float] = {}
    if probs is not None and len(probs) == len(labels):
        found = {labels[k]: float(p) for k, p in enumerate(probs)}
    else:
        for e in exps:
            if e.target.position is None and e.family != "causal-lm" and number(e.target.probability) is not None:
                found[str(e.target.label)] = float(e.target.probability)
        if r.prediction is not None:
            found[str(r.prediction.label)] = float(r.prediction.probability)
    return sorted(found.items(), key=lambda kv: -kv[1])


def prob_text(p: float) -> str:
    """Return a probability as people read it: 0.999 or more as '> 0.999', never a bare 'p = 1'."""
    if p >= 0.9995:
        return "> 0.999"
    if 0 < p < 0.0005:
        return "< 0.001"
    return f"{p:.3f}"


def _bars(probs: Sequence[tuple[str, float]], predicted: str | None, true: str | None, known: int | None = None,
          explained: Sequence[str] = (), index: int = 0) -> str:
    shown = list(probs[:TOP_CLASSES])
    rest = sum(p for _, p in probs[TOP_CLASSES:])
    rows = []
    for label, p in shown:
        cls = "pb" + (" pred" if label == predicted else "") + (" true" if label == true else "")
        mark = ' <span class="tl" title="true label">true</span>' if label == true else ""
        name = esc(label)
        if label in explained and len(explained) > 1:  # its explanation is one click away, in place (shap's text plot)
            pressed = "true" if label == explained[0] else "false"
            name = (f'<button type="button" class="cls" data-k="{explained.index(label)}" aria-pressed="{pressed}" '
                    f'title="show why the model gives {esc(label)} this probability">{name}</button>')
        rows.append(f'<div class="{cls}"><span class="pl" title="{esc(label)}">{name}{mark}</span>'
                    f'<span class="pt"><span class="pf" style="width:{max(0.5, 100 * p):.1f}%"></span></span>'
                    f'<span class="pv">{prob_text(p)}</span></div>')
    if rest > 0:
        rows.append(f'<div class="pb other"><span class="pl">{len(probs) - TOP_CLASSES} other classes</span>'
                    f'<span class="pt"><span class="pf" style="width:{max(0.5, 100 * rest):.1f}%"></span></span>'
                    f'<span class="pv">{prob_text(rest)}</span></div>')
    if known is not None and len(probs) < known:
        rows.append(f'<div class="pnote">the results hold {len(probs)} of {known} class probabilities</div>')
    return f'<div class="probs" role="list" aria-label="class probabilities">{"".join(rows)}</div>'


def why_html(r: InputRecord, exps: Sequence[Explanation], scales: dict[str, float] | None = None, k: int = 3) -> str:
    """Return the inputs table's 'why' cell: the k words that pushed the answer visibly (coloured), or how little any word moves it.

    A word is named when its consensus score is at least WHY_SHARE of the report's scale; when
    none is, the cell says "no word moves p(x) by more than X" rather than naming the least weak.
    """
    c = consensus(main_group(r, exps))
    if c is None:
        return ""
    if c.sentence is not None:
        return f'<span class="pill noev" title="{esc(c.sentence)}">{"no" if c.top == 0 else "weak"} evidence</span>'
    scale = (scales or {}).get(c.kind) or c.top or 1.0
    if c.pixel:
        return overlay_html(r.image_png, c.values, c.units, int(r.index), tiny=True)
    what = c.units.replace("contribution to ", "")
    feature = "token" if c.used[0].granularity == "token" else "word"
    order = [j for j in np.argsort(-c.values, kind="stable")[:k] if c.values[j] >= WHY_SHARE * scale]
    if not order:
        return f'<span class="weak-why">no {feature} moves {esc(what)} by more than {fmt(c.top, 2)}</span>'
    return " ".join(word_span(c.features[j], float(c.values[j]), scale, c.units) for j in order)


def _explanation_html(r: InputRecord, c: Consensus, scales: dict[str, float], lm: bool, target: str) -> str:
    """Return one target's consensus on the card: its words (or map) on the report's scale, and a line on what it is."""
    grey = c.sentence is not None
    scale = scales.get(c.kind) or c.top or 1.0
    if c.pixel:
        body = overlay_html(r.image_png, c.values, c.units, int(r.index)) if not grey else _picture(r)
    else:
        what = f"{'Mean of ' + c.methods if len(c.used) > 1 else c.methods}: {c.units}"
        body = strip_html(c.features, c.values, scale, c.units, what, grey=grey)
    if grey:
        return body + f'<div class="noev-line">{esc(c.sentence)}</div>'
    about = f"mean of {c.methods}" if len(c.used) > 1 else c.methods
    total = f" · total change {signed(c.total)}" if c.total is not None else ""
    largest = "" if c.pixel else f" · largest {fmt(c.top, 2)}"
    return body + (f'<div class="why">Why {"the continuation" if lm else "“" + esc(target) + "”"}: {esc(about)} '
                   f'({esc(c.units)}){largest}{total}</div>')


def card_groups(r: InputRecord, exps: Sequence[Explanation], lm: bool) -> list[list[Explanation]]:
    """Return the targets the card explains, the answer's first: a classifier's every class, a causal LM's whole continuation."""
    first = main_group(r, exps)
    if lm or not first:
        return [first] if first else []
    key = target_key(first[0].target)
    return [first] + [g for g in target_groups(exps) if target_key(g[0].target) != key]


def _picture(r: InputRecord) -> str:
    """Return the input's picture alone (nothing to draw over it)."""
    if not is_base64(r.image_png):
        return ""
    return f'<img alt="input {esc(r.index)}" src="data:image/png;base64,{"".join(str(r.image_png).split())}" class="ov-plain">'


def answer_card(results: Results, r: InputRecord, exps: Sequence[Explanation], scales: dict[str, float] | None = None) -> str:
    """Return one input's answer card: prediction, probabilities, true label, consensus explanation(s), flags.

    Classifiers with several classes explained carry one explanation per class, the predicted one
    shown; the class names switch between them in place. `scales`: the report's colour scales.
    """
    scales = scales if scales is not None else report_scales(exps)
    i = int(r.index)
    groups = target_groups(exps)
    lm = results.model.family == "causal-lm" or r.kind == "prompt"
    pred = r.prediction
    true = true_label(results, r)
    head = [f'<a class="ai" href="#input-{i}">#{i}</a>']
    if lm:
        head.append(f'<span class="ap">continues with</span> <strong class="cont-text">{esc(r.continuation or "—")}</strong>')
    elif pred is not None:
        head.append(f'<strong class="pred-label">{esc(pred.label)}</strong> <span class="ap">p {prob_text(float(pred.probability))}</span>')
    else:
        head.append('<span class="muted">no prediction</span>')
    if true is not None and pred is not None and not lm:
        right = true == str(pred.label)
        head.append(f'<span class="verdict {"right" if right else "wrong"}">{"✓ right" if right else "✗ wrong: true " + esc(true)}</span>')
    flags = [f for f in (flagged(e) for e in exps) if f]
    body = ""
    if lm:
        steps = [g[0].target for g in groups if g[0].target.position is not None]
        if steps:
            body += '<div class="steps">' + "".join(
                f'<span class="step"><span class="tokentext">{esc(clean_token(t.label))}</span> <span class="ap">p {prob_text(float(t.probability))}</span></span>'
                for t in steps) + "</div>"
    if not lm:
        explained = [str(g[0].target.label) for g in card_groups(r, exps, lm)]
        body += _bars(class_probabilities(results, r, exps), None if pred is None else str(pred.label), true,
                      len(results.model.labels), explained, i)
    sentence = None
    shown = card_groups(r, exps, lm)
    strips = []
    for n, g in enumerate(shown):
        c = consensus(g)
        if c is None:
            continue
        html = _explanation_html(r, c, scales, lm, str(g[0].target.label))
        strips.append(f'<div class="strip" data-k="{n}"{"" if n == 0 else " hidden"}>{html}</div>')
        if n == 0:
            sentence = c.sentence
    body += "".join(strips)
    if not strips and r.kind == "image":
        body += _picture(r)
    notes = ""
    if flags:
        notes += '<div class="flags">' + "".join(f'<span class="pill bad">{esc(f)}</span>' for f in dict.fromkeys(flags)) + "</div>"
    if not exps:
        failed = [f for f in results.failures if int(f.input) == i]
        notes += f'<div class="errtext">{esc(failed[0].error) if failed else "no explanations"}</div>'
    cls = "answer" + (" noev" if sentence else "") + (" flagged" if flags else "")
    return f'<article class="{cls}" data-i="{i}"><div class="ahead">{" ".join(head)}</div>{body}{notes}</article>'


def run_line(results: Results) -> str:
    """Return the run in one line: model, N inputs, methods, accuracy where labels are known, flagged explanations."""
    m, run = results.model, results.run
    name = os.path.basename(str(m.path).rstrip("/")) or m.family
    methods = run.get("methods") or list(dict.fromkeys(e.method for e in results))
    parts = [f"<strong>{esc(name)}</strong> ({esc(m.family)})", f"{len(results.inputs):,} input{'s' if len(results.inputs) != 1 else ''}",
             esc(", ".join(method_title(str(x)) for x in methods))]
    known = right = 0
    for r in results.inputs:
        t = true_label(results, r)
        if t is not None and r.prediction is not None and r.kind != "prompt":
            known += 1
            right += t == str(r.prediction.label)
    if known:
        parts.append(f'accuracy <strong>{right}/{known}</strong> ({right / known:.0%}) where labels are known')
    bad = sum(1 for e in results if flagged(e))
    quiet = sum(1 for e in results if weak_evidence(e))
    parts.append(f'<span class="{"bad" if bad else "good"}">{bad} of {len(results):,} explanations flagged unreliable</span>')
    if quiet:
        parts.append(f"{quiet} with no or weak evidence")
    failed = {int(f.input) for f in results.failures if f.method is None}
    if failed:
        parts.append(f'<span class="bad">{len(failed)} input{"s" if len(failed) != 1 else ""} failed</span>')
    removed = run_sentence(results)
    if removed:
        parts.append(f'<span class="removal">{esc(removed)}</span>')
    return f'<p class="runline">{" · ".join(parts)}</p>'


def answers_html(results: Results, records: Sequence[InputRecord], by_input: dict[int, list[Explanation]], limit: int = FIRST_SCREEN) -> str:
    """Return the first screen: the run line, then an answer card per input (the first `limit`, the rest one click away)."""
    scales = report_scales(results)
    cards = [answer_card(results, r, by_input.get(int(r.index), []), scales) for r in records]
    first, rest = cards[:limit], cards[limit:]
    more = ""
    if rest:
        more = (f'<details class="more-answers"><summary>{len(rest):,} more answer{"s" if len(rest) != 1 else ""}</summary>'
                f'<div class="answers">{"".join(rest)}</div></details>')
    return (f'<section id="answers">{run_line(results)}<div class="answers">{"".join(first)}</div>{more}</section>\n')


def answer_doc(results: Results, r: InputRecord) -> dict[str, Any]:
    """Return what the inputs table shows of an input's answer: true label and right/wrong."""
    t = true_label(results, r)
    pred = r.prediction
    return {"true": t, "right": None if t is None or pred is None or r.kind == "prompt" else t == str(pred.label)}
