"""The report page: header, quality figures, input index and one section per input, around the scripts."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from .assets_files import report_css, scripts_html
from .answer import answer_doc, answers_html, prob_text, why_html
from .constants import ATTENTION_SCALE, AGREE_SCALE, CLIP_PERCENT, COLORSCALE, OUTPUT_UNITS
from .data import estimate_height, input_doc, settings_text
from .dataset import AGGREGATE_MIN, MAX_INPUTS, sample, self_distributions
from .dataset_section import dataset_doc, dataset_html, hist_section
from .encode import esc, fmt, number, plain, script_json
from .evidence import report_scales, weak_evidence
from .plotly_bundle import embedded_script
from .quality import checks_sentence, input_flags, run_series
from .removal_text import run_removal, run_sentence
from .trust import TrustContext, definitions
from .trust_summary import summary_doc, summary_html

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Failure, InputRecord, Results

PREVIEW = 160  # characters of an input shown in the index
# Nothing may leave the page: scripts and styles are inline, images are data: URIs; a page made with
# assets="shared" may also load its plotly.js file from its own folder ('self').
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' blob:{shared}; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src data: blob:"
)
ASSETS = ("inline", "shared")


def render_page(results: Results, max_inputs: int | None = MAX_INPUTS, asset: str | None = None) -> str:
    """Return the whole report page for `results` as HTML text.

    Runs of more than `max_inputs` inputs (None: no limit) show a section for a deterministic
    sample of them only, after the across-inputs view that covers every input. With `asset` (a
    file name beside the page) plotly.js is loaded from that file instead of embedded.
    """
    shown = sample(results, max_inputs)
    records = [r for r in results.inputs if shown is None or int(r.index) in shown]
    by_input: dict[int, list[Explanation]] = {}
    for e in results:
        by_input.setdefault(int(e.input), []).append(e)
    fails: dict[int, list[Failure]] = {}
    for f in results.failures:
        fails.setdefault(int(f.input), []).append(f)
    known = {int(r.index) for r in results.inputs}
    orphans = [f for f in results.failures if int(f.input) not in known]
    series = run_series(results) if shown is None else []
    hists = self_distributions(results) if shown is not None else []
    ctx = TrustContext.of(results)
    scales = report_scales(results)
    removal = run_removal(results)
    trust = summary_doc(results)
    big = shown is not None or len(results.inputs) >= AGGREGATE_MIN
    dataset = dataset_doc(results) if big else None
    meta: dict[str, Any] = {"colorscale": COLORSCALE, "attscale": ATTENTION_SCALE, "agreescale": AGREE_SCALE,
                            "clip": CLIP_PERCENT, "scales": scales, "quality": series, "qhist": hists}
    if ctx.enabled:
        meta["trust"] = definitions()
    if trust and trust.get("sanity"):
        meta["sanity"] = trust["sanity"]
    if dataset is not None:
        meta["dataset"] = dataset
    csp = CSP.format(shared=" 'self'" if asset else "")
    title = f"explain report · {os.path.basename(str(results.model.path).rstrip('/')) or results.model.family}"
    sections = [_section(r, by_input.get(int(r.index), []), fails.get(int(r.index), []), ctx, removal, scales) for r in records]
    quality = _quality(series) if shown is None else hist_section(hists)
    index = _index(results, records, by_input, fails, shown, scales)
    # One input: its checks in a sentence under the answer, and its section before the run-level plots
    # (one point each) and the one-row table, so the answer's detail comes right after the answer.
    single = len(records) == 1 and len(results.inputs) == 1
    checks = checks_sentence(by_input.get(int(records[0].index), [])) if single else ""
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{esc(title)}</title>\n<style>{report_css()}</style>\n</head>\n<body>\n",
        _bar(trust is not None, dataset is not None, scales),
        "<main>\n",
        f'<h1 class="report-title">{esc(title.removeprefix("explain report · "))} <span>explained</span></h1>\n',
        answers_html(results, records, by_input),
        f'<p class="checkline"><strong>Self-checks:</strong> {esc(checks)} <a href="#quality">(plots below)</a></p>\n' if checks else "",
        _overview(results, orphans),
        summary_html(trust) if trust else _no_metrics(),
        dataset_html(results, shown, dataset, preview) if dataset is not None else "",
    ]
    parts += [*sections, quality, index] if single else [quality, index, *sections]
    version = (results.run.get("versions") or {}).get("explain", "")
    parts += [
        f'<footer>Made by explain {esc(version)} from results only (no model). One self-contained file: '
        "no request leaves this page.</footer>\n</main>\n",
        f'<script type="application/json" id="explain-meta">{script_json(meta)}</script>\n',
        # The partial bundle is built with --define:global=window: it needs no `global` shim.
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n",
        scripts_html(),  # reports/assets/*.js, inlined in order
        # Last, as text: the page is usable before the parser even reaches it (see assets/core.js).
        f'<script src="{esc(asset)}"></script>\n' if asset else embedded_script() + "\n",
        "</body>\n</html>\n",
    ]
    return "".join(parts)


def _bar(trust: bool, dataset: bool, scales: dict[str, float]) -> str:
    links = '<a href="#answers">Answers</a><a href="#overview">Run details</a>' + ('<a href="#trust">Trust</a>' if trust else "")
    links += ('<a href="#dataset">Across inputs</a>' if dataset else "") + '<a href="#quality">Checks</a><a href="#index">Inputs</a>'
    # The report's colour scale with its numbers: every word coloured in these units is drawn on it.
    legend = "".join(
        f'<span class="lg-scale" data-kind="{esc(kind)}"><span class="lg-n">−{fmt(m, 3)}</span><span class="lg-bar"></span>'
        f'<span class="lg-n">+{fmt(m, 3)}</span> <span>contribution to {esc(OUTPUT_UNITS.get(kind, kind))}</span></span>'
        for kind, m in scales.items()
    ) or '<span class="lg-bar"></span>'
    return (
        '<header class="bar"><div class="brand">explain <span>report</span></div>'
        f'<nav aria-label="sections">{links}</nav>'
        '<button type="button" id="print-btn" class="print" title="Draw every section and figure, then print or save as PDF">'
        "Print / PDF</button>"
        '<div class="legend" title="The report\'s colour scale: red supports, blue opposes the target; words of every input are drawn on it">'
        f'{legend}<span>blue opposes · red supports</span></div></header>\n'
    )


def _no_metrics() -> str:
    return ('<p class="note pointer">Faithfulness, sanity and agreement figures were not computed for this run: '
            'add <code>--metrics</code> to <code>explain run</code> (or call <code>explain.metrics.evaluate</code>) to see them.</p>\n')


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    """Return a definition list; values are already-escaped HTML."""
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _pills(items: Sequence[Any], cls: str = "", limit: int = 30) -> str:
    shown = "".join(f'<span class="pill {cls}">{esc(x)}</span>' for x in list(items)[:limit])
    more = len(items) - limit
    return shown + (f' <span class="muted">and {more} more</span>' if more > 0 else "")


def _overview(results: Results, orphans: Sequence[Failure]) -> str:
    m, run = results.model, plain(results.run)
    seconds = number(run.get("seconds"))
    if seconds is None:
        seconds = sum(round(float(e.seconds), 4) for e in results)
    rows = run.get("rows") if isinstance(run.get("rows"), int) else sum(int(e.rows) for e in results)
    methods = run.get("methods") or list(dict.fromkeys(e.method for e in results))
    cached = sum(int(e.cached_rows) for e in results)
    failed = {int(f.input) for f in results.failures if f.method is None}
    shape = " × ".join(f"{v} {k}" for k, v in (("layers", m.layers), ("heads", m.heads)) if v is not None)
    model_rows = [
        ("family", esc(m.family)),
        ("architecture", esc(m.architecture or "—")),
        ("path", '<span class="mono path">' + esc(m.path).replace("/", "/<wbr>") + "</span>"),
        ("content hash", f'<span class="mono">{esc(m.content_hash)}</span>'),
        ("parameters", f"{int(m.parameters):,}"),
        ("labels", _pills(m.labels) if m.labels else "—"),
    ]
    if shape:
        model_rows.append(("size", esc(shape)))
    if m.max_length is not None:
        model_rows.append(("max length", esc(m.max_length)))
    target = run.get("target")
    grains = sorted({str(e.granularity) for e in results}) or [str(run.get("granularity", "—"))]
    run_rows = [
        ("created", esc(run.get("created", "—"))),
        ("methods", _pills(methods)),
        ("granularity", esc(", ".join(grains))),
        ("removal (baseline)", esc(run_sentence(results) or "—")),
        ("target", esc("the model's prediction" if target is None else target)),
        ("seed", esc(run.get("seed", "—"))),
        ("device", esc(run.get("device", m.device))),
        ("total cost", f"{fmt(seconds, 4)} s · {int(rows) + cached:,} rows" + (f", {cached:,} from cache" if cached else "")),
        ("inputs", f"{len(results.inputs):,}" + (f' <span class="pill bad">{len(failed)} failed</span>' if failed else "")),
        ("explanations", f"{len(results):,}"),
    ]
    versions = run.get("versions") or {}
    version_rows = [(str(k), f'<span class="mono">{esc(v)}</span>') for k, v in versions.items()] or [("versions", "—")]
    used: dict[str, str] = {}
    for e in results:
        used.setdefault(e.method, settings_text(e.settings))
    for name, s in (run.get("settings") or {}).items():
        used.setdefault(str(name), settings_text(s if isinstance(s, dict) else {"value": s}))
    settings = "".join(
        f'<tr><td><strong>{esc(k)}</strong></td><td class="mono">{esc(v or "—")}</td></tr>' for k, v in used.items()
    )
    orphan_html = ""
    if orphans:
        orphan_html = '<div class="box" style="margin-top:14px"><h3>Failures</h3><ul class="fails">' + "".join(
            f'<li><strong>input {esc(f.input)}{" · " + esc(f.method) if f.method else ""}:</strong> '
            f'<span class="errtext">{esc(f.error)}</span></li>'
            for f in orphans
        ) + "</ul></div>"
    name = os.path.basename(str(m.path).rstrip("/")) or m.path
    lede = (
        f"{esc(m.family)} · {len(results.inputs):,} input{'s' if len(results.inputs) != 1 else ''} · "
        f"{esc(', '.join(map(str, methods)))} · {fmt(seconds, 3)} s on {esc(run.get('device', m.device))}"
    )
    return (
        f'<details id="overview" class="run-details"><summary>Run details: model, run, versions, method settings '
        f'<span class="muted">({lede})</span></summary><div class="overview">'
        f'<div class="box"><h3>Model</h3>{_kv(model_rows)}</div>'
        f'<div class="box"><h3>Run</h3>{_kv(run_rows)}</div>'
        f'<div class="box"><h3>Library versions</h3>{_kv(version_rows)}</div></div>'
        f'<table class="settings-table">{settings}</table></details>'
        f"{orphan_html}\n"
    )


def _quality(series: Sequence[dict[str, Any]]) -> str:
    if not series:
        return '<section id="quality" class="sec"><div class="sec-head"><h2>Quality checks</h2></div><p class="muted">No method in this run reports quality checks.</p></section>\n'
    boxes = "".join(
        f'<div class="box"><h3>{esc(s["title"])}</h3><p>{esc(s["help"])}</p><p><strong>{esc(s["summary"])}</strong></p>'
        f'<div class="fig" id="q-{esc(s["key"])}"></div></div>'
        for s in series
    )
    return f'<section id="quality" class="sec"><div class="sec-head"><h2>Quality checks</h2></div><div class="qgrid">{boxes}</div></section>\n'


def preview(r: InputRecord, limit: int = PREVIEW) -> str:
    """Return a one-line plain-text preview of an input (text, prompt ▸ continuation, or file name)."""
    if r.kind == "image":
        name = os.path.basename(str(r.path)) if r.path else "image"
        size = f" ({r.width}×{r.height})" if r.width and r.height else ""
        text = name + size
    elif r.kind == "prompt" and r.continuation:
        text = f"{r.text or ''} ▸ {r.continuation}"
    else:
        text = r.text or ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _index(
    results: Results,
    records: Sequence[InputRecord],
    by_input: dict[int, list[Explanation]],
    fails: dict[int, list[Failure]],
    shown: dict[int, str] | None,
    scales: dict[str, float] | None = None,
) -> str:
    rows = []
    for r in records:
        i = int(r.index)
        exps = by_input.get(i, [])
        fl = fails.get(i, [])
        input_failed = [f for f in fl if f.method is None]
        pred = r.prediction
        label = esc(pred.label) if pred is not None else "—"
        prob = prob_text(float(pred.probability)) if pred is not None else ""
        ans = answer_doc(results, r)
        truth = "—" if ans["true"] is None else esc(ans["true"])
        if ans["right"] is not None:
            truth = f'<span class="verdict {"right" if ans["right"] else "wrong"}">{"✓" if ans["right"] else "✗"}</span> {truth}'
        quiet = [e for e in exps if weak_evidence(e)]
        methods = _pills(list(dict.fromkeys(e.method for e in exps)))
        methods += "".join(f'<span class="pill fail" title="{esc(f.error)}">{esc(f.method)}</span>' for f in fl if f.method)
        flags = _pills(input_flags(exps), "bad")
        if quiet:
            flags += _pills([f"weak evidence ({', '.join(dict.fromkeys(e.method for e in quiet))})"], "noev")
        if r.note and r.note != "failed":
            flags += _pills([r.note], "info")
        if shown is not None and shown.get(i) not in (None, "first", "random"):
            flags += _pills([shown[i]], "info")
        if input_failed:
            flags += f'<span class="errtext" title="{esc(input_failed[0].error)}">{esc(input_failed[0].error)}</span>'
        cls = ' class="failed"' if input_failed else ""
        rows.append(
            f'<tr{cls}><td class="num"><a href="#input-{i}">{i}</a></td>'
            f'<td class="txt"><a href="#input-{i}">{esc(preview(r)) or "<span class=muted>(empty)</span>"}</a></td>'
            f'<td>{label}</td><td class="num">{prob}</td><td>{truth}</td><td class="why-cell">{why_html(r, exps, scales)}</td>'
            f'<td>{methods}</td><td>{flags}</td></tr>'
        )
    n_failed = sum(1 for r in results.inputs if any(f.method is None for f in fails.get(int(r.index), [])))
    count = f"{len(results.inputs):,} input{'' if len(results.inputs) == 1 else 's'}" + (f" · {n_failed} failed" if n_failed else "")
    if shown is not None:
        count = f"showing {len(records):,} of {count} (see Across inputs)"
    return (
        f'<section id="index" class="sec"><div class="sec-head"><h2>Inputs</h2><span class="count" data-total="{esc(count)}">{count}</span>'
        '<input type="search" id="filter" placeholder="Filter inputs…" aria-label="filter inputs"></div>'
        '<table class="index"><colgroup><col style="width:44px"><col><col style="width:130px"><col style="width:64px">'
        '<col style="width:110px"><col style="width:190px"><col style="width:190px"><col style="width:210px"></colgroup><thead><tr><th class="num">#</th><th>Input</th><th>Prediction</th><th class="num">p</th><th>True label</th><th>Why (top features)</th>'
        f'<th>Methods</th><th>Flags</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>\n'
    )


def _section(r: InputRecord, exps: list[Explanation], fails: list[Failure], ctx: TrustContext | None = None,
             removal: str | None = None, scales: dict[str, float] | None = None) -> str:
    i = int(r.index)
    head = [f'<h2>Input {i}</h2><span class="pill info">{esc(r.kind)}</span>']
    if r.prediction is not None:
        head.append(f'<span class="muted">predicted</span> <strong>{esc(r.prediction.label)}</strong> '
                    f'<span class="muted">p {prob_text(float(r.prediction.probability))}</span>')
    head.append(_pills(input_flags(exps), "bad"))
    head.append('<a class="top" href="#index">↑ index</a>')
    if r.kind == "image":
        quote = f'<div class="quote">{esc(preview(r, 10_000))}</div>'
    elif r.kind == "prompt":
        cont = f'<span class="cont">{esc(r.continuation)}</span>' if r.continuation else ""
        quote = f'<div class="quote">{esc(r.text or "")}{cont}</div>'
    else:
        quote = f'<div class="quote">{esc(r.text or "") or "<span class=muted>(empty)</span>"}</div>'
    note = f'<p class="note">{esc(r.note)}</p>' if r.note and r.note != "failed" else ""
    failed = ""
    if fails:
        failed = '<ul class="fails">' + "".join(
            f'<li><strong>{esc(f.method + " failed" if f.method else "Input failed")}:</strong> <span class="errtext">{esc(f.error)}</span></li>'
            for f in fails
        ) + "</ul>"
    if exps:
        doc = input_doc(r, exps, ctx, removal, scales)
        body = f'<div class="body pending" style="min-height:{estimate_height(doc)}px">Drawing explanations…</div>'
        data = f'<script type="application/json" id="d{i}">{script_json(doc)}</script>'
    else:
        body = "" if fails else '<p class="muted">No explanations for this input.</p>'
        data = ""
    return (
        f'<section class="input" id="input-{i}" data-i="{i}"><div class="ihead">{"".join(head)}</div>'
        f"{quote}{note}{failed}{body}{data}</section>\n"
    )
