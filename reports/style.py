"""The page's colours and CSS: one diverging scale for every signed score, and a quiet layout."""

from __future__ import annotations

from .constants import COLORSCALE

__all__ = ["COLORSCALE", "CSS"]

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --soft:#f6f8fa; --accent:#0b5cad; --bad:#b2182b;
  --font:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  --mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
* { box-sizing: border-box; }
html { scroll-padding-top: 64px; }
body { margin: 0; font: 14px/1.5 var(--font); color: var(--fg); background: #fff; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
.bar { position: sticky; top: 0; z-index: 10; display: flex; align-items: center; gap: 24px; padding: 8px 28px;
  background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 650; font-size: 15px; letter-spacing: -.01em; } .brand span { color: var(--muted); font-weight: 400; }
.bar nav { display: flex; gap: 16px; font-size: 13px; }
.legend { margin-left: auto; display: flex; align-items: center; gap: 8px; font-size: 12px; color: var(--muted); }
.lg-bar { width: 160px; height: 10px; border-radius: 2px; border: 1px solid var(--line);
  background: linear-gradient(to right, #2166ac, #67a9cf 25%, #f7f7f7 50%, #ef8a62 75%, #b2182b); }
main { max-width: 1240px; margin: 0 auto; padding: 8px 28px 80px; }
h1 { font-size: 24px; font-weight: 650; margin: 24px 0 2px; letter-spacing: -.015em; }
h2 { font-size: 18px; font-weight: 650; margin: 0; }
h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; font-weight: 600; }
h4 { font-size: 13px; margin: 14px 0 6px; font-weight: 600; }
.lede { color: var(--muted); margin: 0 0 18px; }
.muted { color: var(--muted); }
.overview { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 14px; }
.box { border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; background: #fff; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; font-size: 13px; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.pill { display: inline-block; padding: 0 7px; margin: 1px 3px 1px 0; border: 1px solid var(--line); border-radius: 10px;
  font-size: 12px; background: var(--soft); white-space: nowrap; }
.pill.bad, .flag { border-color: #f1b5b8; background: #fdecec; color: var(--bad); }
.pill.info { border-color: #d0d7de; background: #fff; color: var(--muted); }
.pill.fail { text-decoration: line-through; color: var(--bad); }
details.settings { margin-top: 14px; } details summary { cursor: pointer; color: var(--accent); font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; }
th, td { padding: 4px 10px 4px 0; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.sec { margin-top: 34px; }
.sec-head { display: flex; align-items: baseline; gap: 14px; margin-bottom: 10px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
.sec-head .count { color: var(--muted); font-size: 13px; }
.sec-head input[type=search] { margin-left: auto; font: inherit; font-size: 13px; padding: 3px 8px; border: 1px solid var(--line); border-radius: 4px; width: 240px; }
.qgrid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; }
.qgrid .box p { margin: 2px 0 0; font-size: 12.5px; color: var(--muted); }
.qgrid .fig { min-height: 220px; }
table.index { width: 100%; table-layout: fixed; }
table.index td { overflow: hidden; text-overflow: ellipsis; }
table.index thead th { position: sticky; top: 45px; background: #fff; border-bottom: 1px solid var(--line); padding-top: 6px; }
table.index td { border-bottom: 1px solid #eef1f4; padding-top: 3px; padding-bottom: 3px; }
table.index tbody tr:hover { background: var(--soft); }
table.index td.txt { white-space: nowrap; padding-right: 16px; }
table.index tr.failed td.txt a { color: var(--bad); }
table.index .errtext { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.errtext { color: var(--bad); font-family: var(--mono); font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
section.input { margin-top: 26px; padding-top: 14px; border-top: 2px solid var(--fg); min-height: 160px; }
section.input .ihead { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
section.input .ihead .top { margin-left: auto; font-size: 12px; }
.quote { margin: 8px 0 6px; padding: 8px 12px; background: var(--soft); border-left: 3px solid var(--line);
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: 14px; }
.quote .cont { background: #fff3c4; border-radius: 2px; }
.body { margin-top: 8px; } .body.pending { color: var(--muted); font-size: 13px; }
.group { margin: 16px 0 8px; }
.group + .group { border-top: 1px dashed var(--line); padding-top: 14px; }
.group-head { display: flex; align-items: baseline; gap: 10px; margin-bottom: 8px; }
.group-head .gk { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.group-head .label { font-weight: 650; font-size: 15px; }
.tokentext, .chip.tok { white-space: pre; font-family: var(--mono); }
.group-head .prob { font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: 1fr; gap: 10px; }
.cards.img { grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; background: #fff; min-width: 0; }
.card.flagged { border-color: #f1b5b8; }
.card-head { display: flex; align-items: baseline; gap: 10px; margin-bottom: 6px; }
.mname { font-weight: 600; } .cost { margin-left: auto; color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.flag { font-size: 11.5px; padding: 0 6px; border: 1px solid; border-radius: 9px; }
.heat { line-height: 2.05; font-size: 14.5px; }
.heat .w { padding: 2px 4px; border-radius: 3px; cursor: default; box-shadow: inset 0 0 0 1px rgba(0,0,0,.06); }
.checks { list-style: none; padding: 0; margin: 8px 0 0; font-size: 12.5px; }
.checks li { padding: 2px 0; } .checks .ck-label { color: var(--muted); } .checks .ck-value { font-variant-numeric: tabular-nums; }
.checks li.bad .ck-value { color: var(--bad); font-weight: 600; } .checks li.bad .ck-value::after { content: "  \\26A0"; }
.ck-help { color: var(--muted); font-size: 11.5px; }
.settings-line { margin-top: 6px; color: #8c959f; font-size: 11.5px; font-family: var(--mono); overflow-wrap: anywhere; }
.att { margin-top: 10px; border-top: 1px dashed var(--line); padding-top: 8px; }
.controls, .toolbar { display: flex; gap: 14px; flex-wrap: wrap; align-items: center; font-size: 12.5px; }
.ctl { display: inline-flex; gap: 6px; align-items: center; } .ctl > span:first-child { color: var(--muted); }
select { font: inherit; font-size: 12.5px; padding: 2px 4px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.note { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
.compare { margin-top: 12px; } table.agree td, table.agree th { padding: 3px 14px 3px 0; }
table.agree td.num { padding: 3px 10px; }
.fails { margin: 6px 0; padding-left: 18px; }
.gen-head { font-size: 12.5px; color: var(--muted); margin: 4px 0 6px; }
.gen { display: flex; flex-wrap: wrap; gap: 4px; }
.chip { font-size: 13px; padding: 2px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
.chip:hover { border-color: var(--accent); } .chip.active { background: var(--accent); border-color: var(--accent); color: #fff; }
.chip.whole { font-family: var(--font); font-style: italic; }
.tip { position: fixed; display: none; z-index: 20; max-width: 380px; padding: 6px 9px; background: #1f2328; color: #fff;
  border-radius: 4px; font-size: 12px; pointer-events: none; white-space: pre-wrap; overflow-wrap: anywhere; }
.tip .tip-head { font-weight: 600; font-family: var(--mono); }
.error { color: var(--bad); }
.pill.good { border-color: #b7dfc0; background: #eaf6ec; color: #1a7f37; }
.twrap { overflow-x: auto; }
table.trust-summary, table.trust-table { width: 100%; }
table.trust-summary th, table.trust-table th { vertical-align: bottom; border-bottom: 1px solid var(--line); padding: 4px 10px; cursor: help; }
table.trust-summary td, table.trust-table td { border-bottom: 1px solid #eef1f4; padding: 6px 10px; }
table.trust-summary td:first-child, table.trust-table td:first-child, table.trust-summary th:first-child, table.trust-table th:first-child { padding-left: 0; }
.trust-summary .v, .trust-table .v { font-weight: 600; font-variant-numeric: tabular-nums; }
.trust-summary .sd, .trust-summary .n { color: var(--muted); font-size: 11.5px; white-space: nowrap; }
table.trust-summary th, table.trust-table th > span:first-child { white-space: nowrap; }
.rnd, .lbl, th .dir { color: var(--muted); font-size: 11.5px; font-weight: 400; }
.trust-summary .line, .trust-summary .rnd { white-space: nowrap; } .trust-summary td.sanity .why { color: var(--bad); font-size: 11.5px; }
.trust-summary td.sanity .pill { margin-left: 4px; }
td.tcell.good { background: #f1f9f2; } td.tcell.bad { background: #fdf1f1; }
td.tcell.good .mark { color: #1a7f37; font-weight: 700; } td.tcell.bad .mark { color: var(--bad); font-weight: 700; }
.trust-table td.self .line { white-space: nowrap; } .trust-table td.bad .v { color: var(--bad); } tr.sanity-flagged td:first-child strong { color: var(--bad); }
.trust { margin-top: 12px; border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 10px; }
.trust h4 { margin-top: 8px; } td.nometrics { font-style: italic; text-align: center; }
.tgrid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 14px; margin-top: 14px; }
.sample-note { padding: 8px 12px; border: 1px solid #f0d58c; background: #fff8e1; border-radius: 6px; font-size: 13px; margin: 0 0 14px; }
#dataset .box { margin-bottom: 14px; }
.agg-tools { margin: 6px 0 10px; align-items: flex-start; } .agg-tools .gk { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); padding-top: 3px; }
.agg-classes { max-width: 100%; } .chip .cn { color: var(--muted); font-size: 11px; } .chip.active .cn { color: #dbe9f8; }
.agg-cards { grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); }
ol.words { list-style: none; padding: 0; margin: 4px 0 0; font-size: 13px; }
ol.words li { display: grid; grid-template-columns: minmax(60px, 34%) 1fr 52px 60px; gap: 6px; align-items: center; padding: 1px 0; cursor: default; }
ol.words .wname { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 500; }
.wtrack { height: 10px; background: var(--soft); border-radius: 2px; } .wbar { display: block; height: 10px; border-radius: 2px; min-width: 1px; }
.wval, .wcount { text-align: right; font-variant-numeric: tabular-nums; font-size: 12px; } .wcount { color: var(--muted); }
.dgrid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 10px 16px; }
.dist-title { font-size: 12.5px; font-weight: 600; cursor: help; } .dist .fig, .qhist { min-height: 230px; }
table.slow { width: 100%; table-layout: fixed; } table.slow td { border-bottom: 1px solid #eef1f4; }
table.slow td.txt { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
table.slow col:first-child { width: 50px; }
footer { margin-top: 50px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 10px; }
@media print { .bar { position: static; } }
"""

# The first screen, honest colour and the views added with it (issue 16).
CSS += """
#answers { margin-top: 14px; }
.runline { margin: 0 0 10px; font-size: 14px; color: var(--fg); } .runline .bad { color: var(--bad); } .runline .good { color: #1a7f37; }
.answers { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 10px; }
article.answer { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: #fff; min-width: 0; }
article.answer.flagged { border-color: #f1b5b8; } article.answer.noev { background: #fafafa; }
.ahead { display: flex; align-items: baseline; gap: 8px; flex-wrap: wrap; font-size: 15px; }
.ahead .ai { font-size: 12px; color: var(--muted); } .ahead .ap { color: var(--muted); font-size: 13px; }
.cont-text { white-space: pre-wrap; background: #fff3c4; border-radius: 2px; padding: 0 3px; font-weight: 600; }
.verdict { font-size: 12.5px; font-weight: 600; padding: 0 6px; border-radius: 9px; }
.verdict.right { color: #1a7f37; background: #eaf6ec; } .verdict.wrong { color: var(--bad); background: #fdecec; }
.steps { display: flex; flex-wrap: wrap; gap: 4px 10px; margin: 4px 0; font-size: 12.5px; } .step .tokentext { background: #fff3c4; border-radius: 2px; }
.probs { margin: 6px 0; font-size: 12.5px; } .probs .pnote { color: var(--muted); font-size: 11.5px; }
.pb { display: grid; grid-template-columns: minmax(70px, 34%) 1fr 60px; gap: 6px; align-items: center; line-height: 18px; }
.pb .pl { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; } .pb.pred .pl { font-weight: 650; }
.pb .tl { font-size: 10.5px; color: #1a7f37; border: 1px solid #b7dfc0; border-radius: 7px; padding: 0 4px; }
.pb .pt { height: 10px; background: var(--soft); border-radius: 2px; } .pb .pf { display: block; height: 10px; border-radius: 2px; background: #8c959f; }
.pb.pred .pf { background: #0b5cad; } .pb .pv { text-align: right; font-variant-numeric: tabular-nums; } .pb.other { color: var(--muted); }
.heat.small { font-size: 13.5px; line-height: 1.95; } .heat.grey .w { background: #eaeaea; color: #6e7781; }
.why { font-size: 12px; color: var(--muted); margin-top: 2px; }
.noev-line { font-size: 12.5px; color: #6e4b00; background: #fff8e1; border: 1px solid #f0d58c; border-radius: 4px; padding: 3px 8px; margin-top: 4px; }
.flags { margin-top: 4px; }
.thumb { position: relative; width: 160px; height: 160px; margin: 6px 0; }
.thumb img { position: absolute; inset: 0; width: 160px; height: 160px; image-rendering: pixelated; object-fit: contain; border: 1px solid var(--line); }
.thumb img.ov { opacity: .8; border-color: transparent; }
td.why-cell .w { padding: 0 4px; border-radius: 3px; font-size: 12.5px; } td.why-cell { white-space: nowrap; }
.thumb.tiny, .thumb.tiny img { width: 40px; height: 40px; margin: 0; }
details.more-answers { margin-top: 8px; } details.more-answers .answers { margin-top: 8px; }
details.run-details { margin-top: 18px; border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
details.run-details > summary { font-weight: 600; color: var(--fg); } details.run-details[open] > summary { margin-bottom: 10px; }
details.run-details .muted { font-weight: 400; }
.settings-table { margin-top: 10px; } .settings-table td { color: var(--muted); font-size: 12px; }
.settings-line { color: var(--muted); font-size: 12px; } details.settings-line summary { font-family: var(--font); color: var(--muted); font-size: 12px; }
.mono.path { overflow-wrap: normal; word-break: normal; }
.pill.noev { border-color: #f0d58c; background: #fff8e1; color: #6e4b00; }
.note.pointer { margin: 14px 0 0; font-size: 13px; }
.card.noev .heat .w { background: #eaeaea !important; color: #6e7781 !important; }
.scale { display: flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); margin-top: 4px; font-variant-numeric: tabular-nums; }
.scale .sb { width: 140px; height: 9px; border-radius: 2px; border: 1px solid var(--line); }
.checks li .ck-label { display: inline-block; min-width: 48px; font-weight: 600; color: #1a7f37; }
.checks li.bad .ck-label { color: var(--bad); } .checks li.bad .ck-value { font-weight: 400; color: var(--fg); }
.checks li.bad .ck-value::after { content: ""; }
.att-grid { display: grid; gap: 3px; margin: 8px 0; align-items: center; }
.att-grid canvas { width: 100%; aspect-ratio: 1; cursor: pointer; border: 1px solid var(--line); image-rendering: pixelated; }
.att-grid canvas.active { outline: 2px solid var(--accent); } .att-grid .lab { font-size: 11px; color: var(--muted); text-align: center; white-space: nowrap; }
.gen-grid { margin: 6px 0 10px; } .contrast { margin-top: 14px; border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px 10px; }
.agree-cell { text-align: right; font-variant-numeric: tabular-nums; }
.cards.img { grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.img-orig { display: flex; gap: 16px; align-items: flex-start; margin: 6px 0 10px; }
.img-orig img { width: 256px; height: 256px; object-fit: contain; image-rendering: pixelated; border: 1px solid var(--line); }
@media (max-width: 900px) { .bar .legend { display: none; } .bar nav { overflow-x: auto; white-space: nowrap; } }
.bar { flex-wrap: nowrap; } .bar nav { flex-wrap: nowrap; }
"""
