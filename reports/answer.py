"""The first screen: the run in one line, then per input the answer -- prediction, class probabilities,
true label and right/wrong, and the consensus explanation -- as plain HTML (drawn before any script runs).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .constants import FIRST_SCREEN, UNITLESS
from .data import method_title, target_groups
from .encode import block_mean, esc, fmt, is_base64, number
from .evidence import clean_token, no_evidence
from .inline import diverging_rgb, png_base64
from .quality import flagged
from .removal_text import run_sentence

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, InputRecord, Results

TOP_CLASSES = 5  # probability bars shown per input (the rest summed as "other classes")
WHY_SHARE = 0.2  # the inputs table names a feature when its consensus score is at least this share of the strongest


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
        if label in explained:  # the results explain this class: its scores are one click away
            name = f'<a href="#input-{index}" title="explained below">{name}</a>'
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


def consensus(exps: Sequence[Explanation]) -> tuple[np.ndarray | None, list[Explanation], str | None]:
    """Return (mean of the scores each scaled to its own max |score|, the explanations used, a no-evidence sentence).

    Uses the methods whose scores are output changes and that hold evidence, on the first one's
    features (or grid); when every method lacks evidence, returns the first one's sentence.
    """
    usable = [e for e in exps if e.method not in UNITLESS and np.size(e.scores)]
    usable = usable or [e for e in exps if np.size(e.scores)]
    if not usable:
        return None, [], None
    quiet = [no_evidence(e) for e in usable]
    good = [e for e, q in zip(usable, quiet) if q is None]
    if not good:
        return np.zeros(np.shape(usable[0].scores)), usable[:1], quiet[0]
    first = good[0]
    same = [e for e in good if np.shape(e.scores) == np.shape(first.scores) and tuple(e.features) == tuple(first.features)]
    parts = []
    for e in same:
        s = np.asarray(e.scores, dtype=np.float64)
        m = float(np.abs(s).max()) or 1.0
        parts.append(s / m)
    return np.mean(parts, axis=0), same, None


def _words_html(features: Sequence[str], v: np.ndarray, grey: bool, limit: int = 60) -> str:
    spans = []
    colours = diverging_rgb(v)
    for k, f in enumerate(features[:limit]):
        r, g, b = (int(x) for x in colours[k])
        style = "" if grey else f' style="background:rgb({r},{g},{b});{"color:#fff;" if abs(v[k]) > 0.6 else ""}"'
        spans.append(f'<span class="w"{style} title="{esc(f)}: {fmt(float(v[k]) * 100, 2)}% of the strongest">{esc(f)}</span>')
    more = f' <span class="muted">… {len(features) - limit} more</span>' if len(features) > limit else ""
    return f'<div class="heat small{" grey" if grey else ""}">{" ".join(spans)}{more}</div>'


def _thumb_html(r: InputRecord, v: np.ndarray, grey: bool) -> str:
    if not is_base64(r.image_png):
        return ""
    src = "".join(str(r.image_png).split())
    over = ""
    if not grey:
        m = block_mean(v, 160)
        rgba = np.concatenate([diverging_rgb(m), np.rint(255 * np.clip(np.abs(m), 0, 1) ** 0.8)[..., None]], axis=-1).astype(np.uint8)
        over = f'<img alt="" src="data:image/png;base64,{png_base64(np.ascontiguousarray(rgba))}" class="ov">'
    return f'<div class="thumb"><img alt="input {esc(r.index)}" src="data:image/png;base64,{src}">{over}</div>'


def main_group(r: InputRecord, exps: Sequence[Explanation]) -> list[Explanation]:
    """Return the explanations of the input's answer: the predicted class, or the whole continuation for a causal LM."""
    groups = target_groups(exps)
    if not groups:
        return []
    if r.kind == "prompt":
        return next((g for g in groups if g[0].target.position is None), groups[0])
    pred = r.prediction
    return next((g for g in groups if pred is not None and g[0].target.index == pred.index), groups[0])


def why_html(r: InputRecord, exps: Sequence[Explanation], k: int = 3) -> str:
    """Return the inputs table's 'why' cell: the k features that pushed the answer most (coloured), or a small thumbnail."""
    g = main_group(r, exps)
    v, used, sentence = consensus(g) if g else (None, [], None)
    if v is None or not used:
        return ""
    if sentence is not None:
        return '<span class="pill noev">no evidence</span>'
    if used[0].granularity == "pixel":
        return _thumb_html(r, v, False).replace('class="thumb"', 'class="thumb tiny"')
    order = np.argsort(-v, kind="stable")[:k]
    feats = [clean_token(f) if used[0].granularity == "token" else str(f) for f in used[0].features]
    colours = diverging_rgb(v)
    return " ".join(
        f'<span class="w" style="background:rgb({",".join(str(int(c)) for c in colours[j])});{"color:#fff;" if abs(v[j]) > 0.6 else ""}">'
        f"{esc(feats[j])}</span>" for j in order if v[j] >= WHY_SHARE)


def answer_card(results: Results, r: InputRecord, exps: Sequence[Explanation]) -> str:
    """Return one input's answer card: prediction, probabilities, true label, consensus explanation, flags."""
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
        explained = [str(g[0].target.label) for g in groups]
        body += _bars(class_probabilities(results, r, exps), None if pred is None else str(pred.label), true,
                      len(results.model.labels), explained, i)
    main = main_group(r, exps)
    sentence = None
    if main:
        v, used, sentence = consensus(main)
        if v is not None and used:
            grey = sentence is not None
            if used[0].granularity == "pixel":
                body += _thumb_html(r, v, grey)
            else:
                feats = [clean_token(f) if used[0].granularity == "token" else str(f) for f in used[0].features]
                body += _words_html(feats, v, grey)
            what = ", ".join(method_title(e.method) for e in used)
            target = "the continuation" if lm else f"“{esc(main[0].target.label)}”"
            body += (f'<div class="why">{"Why " + target + ": " if not grey else ""}'
                     f'{"mean of " + esc(what) + ", each scaled to its own max" if not grey and len(used) > 1 else esc(what) if not grey else ""}'
                     "</div>")
    elif r.kind == "image" and is_base64(r.image_png):
        body += _thumb_html(r, np.zeros((1, 1)), True)
    notes = ""
    if sentence:
        notes += f'<div class="noev-line">{esc(sentence)}</div>'
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
    quiet = sum(1 for e in results if no_evidence(e))
    parts.append(f'<span class="{"bad" if bad else "good"}">{bad} of {len(results):,} explanations flagged unreliable</span>')
    if quiet:
        parts.append(f"{quiet} with no evidence")
    failed = {int(f.input) for f in results.failures if f.method is None}
    if failed:
        parts.append(f'<span class="bad">{len(failed)} input{"s" if len(failed) != 1 else ""} failed</span>')
    removed = run_sentence(results)
    if removed:
        parts.append(f'<span class="removal">{esc(removed)}</span>')
    return f'<p class="runline">{" · ".join(parts)}</p>'


def answers_html(results: Results, records: Sequence[InputRecord], by_input: dict[int, list[Explanation]], limit: int = FIRST_SCREEN) -> str:
    """Return the first screen: the run line, then an answer card per input (the first `limit`, the rest one click away)."""
    cards = [answer_card(results, r, by_input.get(int(r.index), [])) for r in records]
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
