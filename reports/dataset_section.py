"""The 'Across inputs' section: per-class attribution, distributions, slowest inputs, and the sample note.

Server-rendered here: the frame, the sample note and the slowest-inputs table (plain HTML, usable
before any script runs). The class views and histograms are drawn by assets/dataset.js from the JSON
document `dataset_doc` returns, which the page embeds once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .data import method_title
from .dataset import aggregate, metric_distributions, sample_note, slowest
from .encode import esc, fmt

if TYPE_CHECKING:
    from explain.results.explanation import InputRecord, Results


def dataset_doc(results: Results) -> dict[str, Any]:
    """Return what the page draws in the section: the per-class view and the metric histograms."""
    return {"agg": aggregate(results), "dists": metric_distributions(results)}


def _slowest_html(results: Results, shown: Mapping[int, str] | None, preview: Any) -> str:
    rows = slowest(results, shown)
    if not rows:
        return ""
    records: dict[int, InputRecord] = {int(r.index): r for r in results.inputs}
    trs = []
    for d in rows:
        i = d["i"]
        r = records.get(i)
        text = esc(preview(r, 90)) if r is not None else ""
        link = f'<a href="#input-{i}">{i}</a>' if d["shown"] else f'<span title="no section for this input in this report">{i}</span>'
        methods = " · ".join(f"{esc(method_title(m))} {fmt(s, 3)} s" for m, s in d["methods"])
        trs.append(f'<tr><td class="num">{link}</td><td class="txt">{text}</td><td class="num">{fmt(d["seconds"], 3)} s</td>'
                   f'<td class="num">{d["rows"]:,}</td><td class="muted">{methods}</td></tr>')
    return (
        '<div class="box slowest"><h3>Slowest inputs</h3><table class="slow"><colgroup><col style="width:60px"><col>'
        '<col style="width:90px"><col style="width:90px"><col style="width:40%"></colgroup><thead><tr><th class="num">#</th><th>Input</th>'
        '<th class="num">seconds</th><th class="num">rows</th><th>per method</th></tr></thead>'
        f'<tbody>{"".join(trs)}</tbody></table></div>'
    )


def dataset_html(results: Results, shown: Mapping[int, str] | None, doc: Mapping[str, Any], preview: Any) -> str:
    """Return the 'Across inputs' section; `preview(record, limit)` gives an input's one-line text."""
    failed = {int(f.input) for f in results.failures}
    note = sample_note(shown, len(results.inputs), failed)
    note_html = f'<p class="sample-note" id="sample-note">{esc(note)}</p>' if note else ""
    agg = doc.get("agg")
    agg_html = ""
    if agg:
        what = ("Mean |attribution| per class, each map divided by its own max |score| first, so every input counts once"
                if agg["kind"] == "maps" else
                "Words that carry the most attribution per class: each explanation's |scores| are shares of its total; "
                "a word's share is their mean over the class's explanations (red: it supports the class on average, blue: it opposes)")
        more = f' · {agg["more"]} smaller classes left out' if agg.get("more") else ""
        agg_html = (
            f'<div class="box agg"><h3>What carries the attribution, per class</h3><p class="note">{esc(what)}{esc(more)}.</p>'
            '<div class="agg-view" id="agg-view"><p class="muted">Drawing…</p></div></div>'
        )
    dists_html = ""
    if doc.get("dists"):
        dists_html = (
            '<div class="box"><h3>Distributions of the trust metrics</h3><p class="note">One histogram per metric, a line per method; '
            'the dashed line is the mean of the same metric for random feature orders.</p>'
            '<div class="dgrid" id="dist-grid"></div></div>'
        )
    return (
        f'<section id="dataset" class="sec"><div class="sec-head"><h2>Across inputs</h2>'
        f'<span class="count">{len(results.inputs):,} inputs · {len(results):,} explanations</span></div>'
        f"{note_html}{agg_html}{dists_html}{_slowest_html(results, shown, preview)}</section>\n"
    )


def hist_section(series: Sequence[Mapping[str, Any]]) -> str:
    """Return the quality section of a sampled run: one histogram per self-check instead of a point per input."""
    if not series:
        return ('<section id="quality" class="sec"><div class="sec-head"><h2>Quality checks</h2></div>'
                '<p class="muted">No method in this run reports quality checks.</p></section>\n')
    boxes = "".join(
        f'<div class="box"><h3>{esc(s["title"])}</h3><p>{esc(s["help"])}</p><p><strong>'
        f'{esc(", ".join(t["title"] + ": " + format(t["n"], ",") + " explanations, median " + fmt(t["median"], 3) for t in s["traces"]))}'
        f'</strong></p><div class="fig qhist" id="qh-{esc(s["key"])}"></div></div>'
        for s in series
    )
    return f'<section id="quality" class="sec"><div class="sec-head"><h2>Quality checks</h2></div><div class="qgrid">{boxes}</div></section>\n'
