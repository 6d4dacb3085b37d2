/* The report page's JavaScript, part 3: image overlays, the causal-LM token view, quality figures, start-up.
 * Last of the page's scripts: it starts the page. */
(function () {
"use strict";
const X = window.__explain, h = X.h, pe = X.pe, fmt = X.fmt;
const SCALE = X.META.colorscale;
const range = (n) => Array.from({ length: n }, (_, i) => i);
// Over a picture, scores near 0 are transparent: the same hues, with alpha rising towards +-max.
const OVERLAY = SCALE.map(([t, c]) => [t, "rgba(" + [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).join(",") + "," + Math.min(1, 2 * Math.abs(t - 0.5)).toFixed(2) + ")"]);

// ---- images: the original once per input (above the cards); each card the attribution over a faded copy ----
// Colours end at the (100 - clip)th percentile of |score| (stated under each panel); hover shows the real value.
X.imageFigure = function (d, e, scores, card, jobs) {
  const fig = h("div", { class: "fig img-fig" });
  const clipped = e.clip && e.max && e.clip < e.max;
  card.append(fig, h("div", { class: "note", text: "colour scale \u00b1" + fmt(e.clip || e.max, 3) + " " + (e.units || "score") +
    (clipped ? " \u00b7 the top " + X.META.clip + "% of |score| (up to " + fmt(e.max, 3) + ") clipped to the scale's end" : "") +
    (e.fac > 1 ? " \u00b7 shown as " + e.fac + "\u00d7" + e.fac + " pixel block means" : "") +
    (d.view ? " \u00b7 grey: outside the part of the image the model sees (its processor's centre crop)" : "") }));
  jobs.push(() => {
    const [hh, ww] = scores.shape, f = e.fac || 1, lim = e.clip || e.max || X.maxAbs(scores) || 1;
    const z = X.rows(scores, 0, hh, ww);
    const heat = { type: "heatmap", z, x0: (f - 1) / 2, dx: f, y0: (f - 1) / 2, dy: f, colorscale: d.img ? OVERLAY : SCALE, zmin: -lim, zmax: lim,
      opacity: d.opacity, hovertemplate: "pixel (%{x}, %{y})<br>" + pe(e.units || "score") + " %{z:.4g}<extra></extra>",
      colorbar: { thickness: 10, len: 0.9, outlinewidth: 0, tickformat: ".2g", x: 1.0, xpad: 4 } };
    const axis = { visible: false, constrain: "domain" };
    let data;
    if (d.img) {
      data = [{ type: "image", source: "data:image/png;base64," + d.img, hoverinfo: "skip", opacity: 0.45 }, heat];
      fig.dataset.heat = "1";
    } else {
      data = [heat];
      fig.dataset.heat = "0";
    }
    const width = Math.max(256, fig.clientWidth || 300);
    const height = Math.round((width - 50) * hh / ww) + 12;
    return X.plot(fig, data, { xaxis: axis, yaxis: Object.assign({ scaleanchor: "x", autorange: "reversed" }, axis),
      height: Math.min(height, 640), margin: { l: 4, r: 4, t: 6, b: 6 }, shapes: unseen(d.view, ww * f, hh * f).concat((e.vit && e.vit.lay.shapes) || []) }, { displayModeBar: false });
  });
};
// A processor that centre-crops shows the model only its window ([x0, y0, x1, y1] in image pixels):
// the rest is shaded grey with the window outlined, so no colour there reads as evidence.
function unseen(view, ww, hh) {
  if (!view) return [];
  const [x0, y0, x1, y1] = view.map((v) => v - 0.5), L = -0.5, R = ww - 0.5, T = -0.5, B = hh - 0.5;
  const grey = { type: "rect", layer: "above", line: { width: 0 }, fillcolor: "rgba(110,110,110,0.6)" };
  const parts = [[L, T, R, y0], [L, y1, R, B], [L, y0, x0, y1], [x1, y0, R, y1]].filter(([a, b, c, d2]) => c - a > 0.01 && d2 - b > 0.01);
  return parts.map(([a, b, c, d2]) => Object.assign({ x0: a, y0: b, x1: c, y1: d2 }, grey)).concat([{ type: "rect", layer: "above", x0, y0, x1, y1,
    line: { color: "#333", width: 1.5, dash: "dash" }, fillcolor: "rgba(0,0,0,0)", name: "what the model sees" }]);
}
function opacityControl(body, d) {
  const input = h("input", { type: "range", min: "0", max: "1", step: "0.05", value: String(d.opacity), "aria-label": "overlay opacity" });
  const out = h("span", { class: "muted", text: Math.round(d.opacity * 100) + "%" });
  input.addEventListener("input", () => {
    d.opacity = +input.value;
    out.textContent = Math.round(d.opacity * 100) + "%";
    for (const fig of body.querySelectorAll(".img-fig.js-plotly-plot")) Plotly.restyle(fig, { opacity: d.opacity }, [+fig.dataset.heat]);
  });
  return h("div", { class: "toolbar" }, [h("label", { class: "ctl" }, [h("span", { text: "Overlay opacity" }), input, out])]);
}

// ---- causal LM: a context x generated tokens grid (inseq), then the per-token view ----
// Rows: the prompt's words, then the generated ones (a later token's context holds the earlier
// generated tokens, which often carry the largest scores: a model copying its own output); a
// generated row is greyed in the columns it comes at or after. One colour scale over every cell drawn.
const shown = (t) => X.clean(t).replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
const MASKED = "#e6e8eb";
async function genGrid(d, tokens, onPick) {
  const n = d.prompt_n || 0;
  const methods = [];
  for (const g of tokens) for (const e of g.exps) if (!methods.includes(e.m)) methods.push(e.m);
  if (!n || !tokens.length || !methods.length) return null;
  const pick = methods.find((m) => m !== "attention") || methods[0];
  const sel = h("select", { "aria-label": "grid method" }, methods.map((m) => h("option", { value: m, text: tokens[0].exps.find((e) => e.m === m).title })));
  sel.value = pick;
  const fig = h("div", { class: "fig gen-grid", "data-cols": tokens.length });
  const box = h("div", null, [h("div", { class: "controls" }, [h("span", { class: "gk", text: "Context \u00d7 generated tokens" }),
    h("label", { class: "ctl" }, [h("span", { text: "method" }), sel]),
    h("span", { class: "muted", text: "each column: what moved that token's log-probability, the prompt's words above the line and the tokens generated before it below; under each token its probability at that step; click a column to open it" })]), fig]);
  async function draw() {
    const m = sel.value, exps = tokens.map((g) => g.exps.find((x) => x.m === m));
    const lens = exps.map((e) => (e ? e.f.length : 0));
    const rows = Math.max(n, ...lens), longest = exps[lens.indexOf(Math.max(...lens))];
    const cols = [];
    for (const e of exps) {
      const s = e ? await X.unpack(e.s) : null;
      cols.push(range(rows).map((r) => (s && r < s.length ? s[r] : null)));
    }
    const z = range(rows).map((r) => cols.map((c) => c[r]));
    const mask = range(rows).map((r) => cols.map((c, k) => (r >= n && r >= lens[k] ? 1 : null)));
    let lim = 0;
    for (const row of z) for (const v of row) if (v !== null) lim = Math.max(lim, Math.abs(v));
    lim = lim || 1;
    const words = range(rows).map((r) => (longest && r < longest.f.length ? longest.f[r] : ""));
    const labels = words.map((w, r) => (r < n ? shown(w) : "\u25b8 " + shown(w)));
    fig.dataset.rows = rows;
    fig.dataset.prompt = n;
    const xt = tokens.map((g) => pe(shown(g.title)) + "<br><span style='font-size:10px'>p " + X.prob(g.t.p) + "</span>");
    const units = longest ? longest.units.replace(/\(.*\)$/, "(token)") : "score";
    await X.plot(fig, [
      { type: "heatmap", z: mask, x: range(tokens.length), y: range(rows), colorscale: [[0, MASKED], [1, MASKED]], showscale: false,
        xgap: 1, ygap: 1, hovertemplate: "generated at or after this token: not in its context<extra></extra>" },
      { type: "heatmap", z, x: range(tokens.length), y: range(rows), colorscale: SCALE, zmin: -lim, zmax: lim,
        texttemplate: "%{z:.2f}", textfont: { size: 11 }, xgap: 1, ygap: 1, hoverongaps: false,
        customdata: z.map((row, r) => row.map((_, c) => pe(shown(words[r]) || "") + " \u2192 " + pe(shown(tokens[c].title)))),
        hovertemplate: "%{customdata}<br>" + pe(units) + " %{z:.4g}<extra></extra>",
        colorbar: { thickness: 10, outlinewidth: 0, title: { text: pe(units), side: "right" } } }],
      { height: 90 + 26 * rows, margin: { l: 10, r: 10, t: 10, b: 10 },
        shapes: rows > n ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: n - 0.5, y1: n - 0.5, line: { color: "#57606a", width: 1.5 } }] : [],
        xaxis: { tickmode: "array", tickvals: range(tokens.length), ticktext: xt, side: "bottom", automargin: true, showgrid: false, zeroline: false },
        yaxis: labelAxis2(labels, { autorange: "reversed" }) });
    fig.removeAllListeners && fig.removeAllListeners("plotly_click");
    fig.on("plotly_click", (ev) => { const p = ev.points && ev.points[0]; if (p) onPick(+p.x); });
  }
  sel.addEventListener("change", () => X.figure(draw()));
  return { box, draw };
}
const labelAxis2 = (labels, extra) => X.labelAxis(labels, extra, 24);

async function buildLM(body, d) {
  const tokens = d.groups.filter((g) => !g.whole), whole = d.groups.filter((g) => g.whole);
  const strip = h("div", { class: "gen", role: "toolbar" }), panel = h("div", { class: "panel" });
  const chips = [];
  async function select(g, chip) {
    for (const c of chips) c.classList.toggle("active", c === chip);
    for (const p of panel.querySelectorAll(".js-plotly-plot")) Plotly.purge(p);
    panel.textContent = "";
    await X.buildGroup(d, g, panel);
  }
  for (const g of tokens.concat(whole)) {
    const chip = h("button", { type: "button", class: "chip tok" + (g.whole ? " whole" : ""), text: g.whole ? "whole continuation (sum of its tokens' log p)" : shown(g.title) });
    if (!g.whole) X.tip(chip, () => [shown(g.title), "p " + X.prob(g.t.p), "position " + g.t.pos + " \u00b7 token id " + g.t.i]);
    chip.addEventListener("click", () => X.whenDone(select(g, chip)));
    chips.push(chip);
    strip.append(chip);
  }
  const grid = await genGrid(d, tokens, (k) => X.whenDone(select(tokens[k], chips[k])));
  if (grid) { body.append(grid.box); X.runJobs([grid.draw], body); }
  body.append(h("div", { class: "gen-head", text: "Generated tokens \u2014 click one to see its attribution over the context" }), strip, panel);
  // Opens on the first generated token: one step of the model, the plainest question.
  const first = tokens.length ? 0 : chips.length - 1;
  if (chips.length) await select(tokens.concat(whole)[first], chips[first]);
}

// Several classes of one image side by side (shap's image_plot): one method, one panel per class, one scale.
function classGrid(d, groups) {
  const gs = groups.filter((g) => g.exps.some((e) => e.g === "pixel"));
  if (gs.length < 2) return null;
  const methods = [];
  for (const g of gs) for (const e of g.exps) if (!methods.includes(e.m)) methods.push(e.m);
  const sel = h("select", { "aria-label": "class grid method" }, methods.map((m) => h("option", { value: m, text: gs[0].exps.find((e) => e.m === m)?.title || m })));
  const out = h("div", { class: "cards img" });
  const box = h("div", { class: "contrast", "data-view": "classes" }, [h("h4", { text: "Classes side by side" }),
    h("div", { class: "controls" }, [h("label", { class: "ctl" }, [h("span", { text: "method" }), sel]),
      h("span", { class: "muted", text: "one colour scale for every class, so their evidence can be compared" })]), out]);
  async function draw() {
    for (const p of out.querySelectorAll(".js-plotly-plot")) Plotly.purge(p);
    out.textContent = "";
    const picked = gs.map((g) => [g, g.exps.find((e) => e.m === sel.value)]).filter(([, e]) => e);
    const lim = Math.max(...picked.map(([, e]) => e.clip || e.max || 0)) || 1;
    const jobs = [];
    for (const [g, e] of picked) {
      const scores = await X.unpack(e.s);
      const card = h("div", { class: "card method" }, [h("div", { class: "card-head" }, [h("span", { class: "mname", text: g.title }),
        h("span", { class: "cost", text: "p " + X.prob(g.t.p) })])]);
      X.imageFigure(d, Object.assign({}, e, { clip: lim }), scores, card, jobs);
      out.append(card);
    }
    await X.runJobs(jobs, out);
  }
  sel.addEventListener("change", () => X.whenDone(draw()));
  return { box, draw };
}

// Words are drawn on the report's scale (one for every input, so 0.01 is pale next to 0.9); this input's
// own scale shows how its words rank when they are all weak. The choice repaints the cards in place.
function scaleChoice(body, d) {
  const shared = d.groups.some((g) => g.exps.some((e) => e.shared && e.g !== "pixel"));
  if (!shared) return null;
  const own = Math.max(...d.groups.flatMap((g) => g.exps.filter((e) => e.shared).map((e) => e.own || 0)));
  const report = Math.max(...d.groups.flatMap((g) => g.exps.filter((e) => e.shared).map((e) => e.max || 0)));
  const sel = h("select", { "aria-label": "colour scale" }, [
    h("option", { value: "report", text: "the report's: \u00b1" + fmt(report, 2) + " for every input" }),
    h("option", { value: "own", text: "this input's: \u00b1" + fmt(own, 2) }),
  ]);
  sel.addEventListener("change", () => {
    for (const heat of body.querySelectorAll(".heat")) {
      if (!heat._paint || !heat._bar || !heat._bar._shared) continue;
      const m = heat._scales[sel.value];
      heat._paint(m);
      heat._bar._set(m);
    }
  });
  return h("div", { class: "toolbar scale-choice" }, [h("label", { class: "ctl" }, [h("span", { text: "Colour scale" }), sel])]);
}

// Several classes explained (--target all): one at a time, switched in place with one click (shap's
// text plot), the predicted class first; each is built the first time it is shown. Printing shows them all.
async function classTabs(body, d) {
  const tabs = h("div", { class: "gen class-tabs", role: "tablist", "aria-label": "class explained" });
  const panels = d.groups.map((g, k) => h("div", { class: "class-panel", role: "tabpanel", "data-k": k, hidden: k ? "" : null,
    "aria-label": "why " + g.title }));
  const built = new Map();
  const build = (k) => built.get(k) || built.set(k, X.buildGroup(d, d.groups[k], panels[k])).get(k);
  let current = 0;
  const buttons = d.groups.map((g, k) => {
    const b = h("button", { type: "button", role: "tab", class: "chip" + (k ? "" : " active"), "aria-selected": String(!k), tabindex: k ? "-1" : "0",
      "data-k": k }, [h("span", { text: g.title }), g.t.p !== null ? h("span", { class: "cn", text: " p " + X.prob(g.t.p) }) : null]);
    b.addEventListener("click", () => X.whenDone(pick(k)));
    return b;
  });
  async function pick(k) {
    current = k;
    buttons.forEach((b, j) => { b.setAttribute("aria-selected", String(j === k)); b.classList.toggle("active", j === k); b.tabIndex = j === k ? 0 : -1; });
    panels.forEach((p, j) => { p.hidden = j !== k; });
    await build(k);
  }
  tabs.addEventListener("keydown", (ev) => {
    const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    const k = (current + step + buttons.length) % buttons.length;
    buttons[k].focus();
    X.whenDone(pick(k));
    ev.preventDefault();
  });
  tabs.append(h("span", { class: "gk", text: "Why this class" }), ...buttons);
  body.append(tabs, ...panels);
  await build(0);
  const sec = body.closest("section.input");
  if (sec) {
    sec._allTargets = async () => { tabs.hidden = true; for (const k of panels.keys()) { panels[k].hidden = false; await build(k); } };
    sec._afterPrint = () => { tabs.hidden = false; panels.forEach((p, j) => { p.hidden = j !== current; }); };
  }
}

X.buildInput = async function (body, d) {
  body.textContent = "";
  body.classList.remove("pending");
  d.opacity = 0.85;
  if (!d.groups.length) return;
  const pixel = d.groups.some((g) => g.exps.some((e) => e.g === "pixel"));
  if (d.baseline) body.append(h("p", { class: "note removal", text: d.baseline }));
  body.append(scaleChoice(body, d));
  if (pixel) {
    body.append(opacityControl(body, d));
    if (d.img) body.append(h("div", { class: "img-orig" }, [h("img", { alt: "input " + d.i, src: "data:image/png;base64," + d.img }),
      h("div", { class: "note", text: "The input, once. The panels below draw each method's attribution over a faded copy of it." })]));
  }
  if (d.family === "causal-lm") return buildLM(body, d);
  if (d.groups.length > 1) await classTabs(body, d);
  else for (const g of d.groups) await X.buildGroup(d, g, body);
  if (pixel) { const k = classGrid(d, d.groups); if (k) { body.append(k.box); await k.draw(); } }
  const c = X.contrastBlock(d, d.groups);
  if (c) { body.append(c.box); await c.draw(); }
};

// ---- run-level quality figures ----
// On a log axis exact zeros have no place: they are left out and counted in a note, never drawn at an invented floor.
function qualityFigure(div, s) {
  const keep = s.y.map((v) => !s.log || v > 0);
  const zeros = keep.filter((k) => !k).length;
  if (zeros && zeros < keep.length) div.parentNode.append(h("p", { class: "note", text: zeros + " exact zero" + (zeros > 1 ? "s" : "") + " not drawn on the log axis" }));
  s = Object.assign({}, s, { x: s.x.filter((_, i) => keep[i]), y: s.y.filter((_, i) => keep[i]), text: s.text.filter((_, i) => keep[i]), bad: s.bad.filter((_, i) => keep[i]) });
  const y = s.y;
  if (!y.length) { div.parentNode.append(h("p", { class: "note", text: "Every value is exactly 0." })); div.remove(); return Promise.resolve(); }
  // Log axis: one labelled tick per power of ten, at most five.
  let tickvals;
  if (s.log) {
    const lo = Math.floor(Math.log10(Math.min(...y, s.limit || Infinity))), hi = Math.ceil(Math.log10(Math.max(...y, s.limit || 0)));
    const step = Math.max(1, Math.ceil((hi - lo) / 4));
    tickvals = [];
    for (let k = lo; k <= hi; k += step) tickvals.push(Math.pow(10, k));
  }
  const shapes = s.limit !== null ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: s.limit, y1: s.limit, line: { color: "#b2182b", dash: "dash", width: 1 } }] : [];
  return X.plot(div, [{ type: "scatter", mode: "markers", x: s.x, y, customdata: s.y, text: s.text.map(pe),
    marker: { size: 7, color: s.bad.map((b) => (b ? "#b2182b" : "#4a6fa5")), opacity: 0.8 },
    hovertemplate: "%{text}<br>%{customdata:.4g}<extra></extra>" }],
    { height: 220, shapes, margin: { l: 60, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "input" }, zeroline: false, dtick: Math.max(1, Math.ceil((Math.max(...s.x) - Math.min(...s.x)) / 10)) },
      yaxis: s.log ? { type: "log", tickvals, exponentformat: "power", zeroline: false } : { zeroline: false } });
}

// ---- the first screen: a card's class names switch its explanation in place; folded words unfold ----
document.addEventListener("click", (ev) => {
  const t = ev.target instanceof Element ? ev.target : null;
  const cls = t && t.closest("article.answer button.cls");
  if (cls) {
    const card = cls.closest("article.answer");
    if (!card.querySelector(".strip[data-k='" + cls.dataset.k + "']")) return;
    for (const s of card.querySelectorAll(".strip")) s.hidden = s.dataset.k !== cls.dataset.k;
    for (const b of card.querySelectorAll("button.cls")) b.setAttribute("aria-pressed", String(b === cls));
    return;
  }
  const more = t && t.closest("button.more");
  if (more) {
    const el = more.nextElementSibling;
    if (!el || !el.classList.contains("el")) return;
    el.hidden = false;
    more.remove();
    const first = el.querySelector(".w");
    if (first) first.focus();
  }
});

// ---- printing and saving as PDF: every section and figure drawn first ----
const printButton = document.getElementById("print-btn");
if (printButton) printButton.addEventListener("click", () => {
  printButton.disabled = true;
  printButton.textContent = "Drawing every section\u2026";
  X.printReady().then(() => { printButton.disabled = false; printButton.textContent = "Print / PDF"; window.print(); });
});
// Ctrl+P cannot wait: it starts the drawing, and what is still missing says how to get it.
window.addEventListener("beforeprint", () => { X.printReady(); });
window.addEventListener("afterprint", () => {
  for (const sec of document.querySelectorAll("section.input")) if (sec._afterPrint) sec._afterPrint();
});

// ---- start-up ----
const filter = document.getElementById("filter");
if (filter) filter.addEventListener("input", () => {
  const q = filter.value.trim().toLowerCase();
  let n = 0, all = 0;
  for (const tr of document.querySelectorAll("#index tbody tr")) {
    tr.hidden = !!q && !tr.textContent.toLowerCase().includes(q);
    all++; if (!tr.hidden) n++;
  }
  const count = document.querySelector("#index .count");
  if (count) count.textContent = q ? n + " of " + all + " shown" : count.dataset.total;
});
for (const s of X.META.quality) {
  const div = document.getElementById("q-" + s.key);
  if (div) X.lazy(div, () => X.figure(qualityFigure(div, s)));
}
for (const sec of document.querySelectorAll("section.input[data-i]")) {
  if (document.getElementById("d" + sec.dataset.i)) X.lazy(sec, () => X.enqueue(sec));
}
X.ready();
})();
