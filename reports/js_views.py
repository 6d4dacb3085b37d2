"""The page's JavaScript, part 2: method cards, attention explorer, method comparison, target groups (trust panel: js_trust)."""

VIEWS_JS = r"""
(function () {
"use strict";
const X = window.__explain, h = X.h, pe = X.pe, fmt = X.fmt;
const SCALE = X.META.colorscale;
const SEQ = [[0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1, "#08306b"]];
const range = (n) => Array.from({ length: n }, (_, i) => i);

X.plot = function (div, data, layout) {
  const base = { font: X.FONT, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 70, r: 20, t: 28, b: 40 }, hoverlabel: { font: { size: 12 } } };
  return X.loadPlotly().then((P) => P.react(div, data, Object.assign(base, layout), X.CONFIG));
};
const clip = (s, k) => (String(s).length > k ? String(s).slice(0, k - 1) + "\u2026" : String(s));
function labelAxis(labels, extra, max) {
  const step = Math.max(1, Math.ceil(labels.length / 60));
  const vals = range(labels.length).filter((i) => i % step === 0);
  return Object.assign({ tickmode: "array", tickvals: vals, ticktext: vals.map((i) => pe(clip(labels[i], max || 18))),
    tickfont: { size: labels.length > 30 ? 10 : 11 }, showgrid: false, zeroline: false }, extra || {});
}

function checksBlock(lines) {
  const ul = h("ul", { class: "checks" });
  for (const c of lines) {
    ul.append(h("li", { class: c.bad ? "bad" : null }, [
      h("span", { class: "ck-label", text: c.label }), " ", h("span", { class: "ck-value", text: c.value }),
      c.help ? h("div", { class: "ck-help", text: c.help }) : null]));
  }
  return ul;
}

// One card per explanation: heat map (or image overlay), attention explorer, checks, cost, settings.
X.methodCard = async function (d, e, jobs) {
  const scores = await X.unpack(e.s);
  const card = h("div", { class: "card method" + (e.flag ? " flagged" : ""), "data-method": e.m }, [
    h("div", { class: "card-head" }, [
      h("span", { class: "mname", text: e.title }),
      e.flag ? h("span", { class: "flag", text: e.flag }) : null,
      h("span", { class: "cost", text: e.cost })])]);
  if (e.g === "pixel") X.imageFigure(d, e, scores, card, jobs);
  else card.append(X.heatText(e.f, scores, e.ft, { rank: X.ranks(scores) }));
  if (e.att) attentionExplorer(e, scores, card, jobs);
  if (e.checks.length) card.append(checksBlock(e.checks));
  if (e.settings) card.append(h("div", { class: "settings-line", text: e.settings }));
  return { card, scores };
};

// Attention: per layer and head (or their mean), rollout, and the target's relevance; words or tokens.
function attentionExplorer(e, scores, card, jobs) {
  const a = e.att, cache = {};
  const get = async (k) => (k in cache ? cache[k] : (cache[k] = await X.unpack(a[k])));
  const opt = (v, t) => h("option", { value: v, text: t });
  const field = (label, node) => h("label", { class: "ctl" }, [h("span", { text: label }), node]);
  const views = [opt("rel", "Relevance for the target")];
  if (a.w || a.t) views.unshift(opt("att", "Attention"));
  if (a.wr || a.tr) views.push(opt("roll", "Rollout"));
  const vSel = h("select", { "aria-label": "view" }, views);
  const levels = [];
  if (a.w || a.wr) levels.push(opt("w", "Words"));
  if (a.t || a.tr) levels.push(opt("t", "Tokens"));
  const lSel = h("select", { "aria-label": "level" }, levels);
  const shape = (a.w || a.t || { shape: [0, 0] }).shape;
  const layerSel = h("select", { "aria-label": "layer", class: "layer" }, range(shape[0]).map((i) => opt(i, "Layer " + (i + 1))));
  const heads = [opt("mean", "Mean over heads")].concat(a.heads === "mean" ? [] : range(shape[1]).map((i) => opt(i, "Head " + (i + 1))));
  const headSel = h("select", { "aria-label": "head", class: "head" }, heads);
  const fig = h("div", { class: "fig att-fig" }), note = h("div", { class: "note" });
  card.append(h("div", { class: "att" }, [
    h("div", { class: "controls" }, [field("View", vSel), field("Level", lSel), field("Layer", layerSel), field("Head", headSel)]),
    fig, note]));

  async function draw() {
    const view = vSel.value;
    layerSel.disabled = headSel.disabled = view !== "att";
    lSel.disabled = view === "rel";
    if (view === "rel") {
      note.textContent = "Gradient-weighted attention relevance (Chefer et al. 2021) of each word for the target: the card's heat map as bars.";
      const m = X.maxAbs(scores) || 1;
      return X.plot(fig, [{ type: "bar", x: range(scores.length), y: Array.from(scores),
        marker: { color: Array.from(scores, (v) => X.divColor(v / m)), line: { color: "#8c959f", width: 0.5 } },
        text: e.f.map(pe), hovertemplate: "%{text}<br>relevance %{y:.4g}<extra></extra>", textposition: "none" }],
        { height: 260, xaxis: labelAxis(e.f, { tickangle: -40 }), yaxis: { title: { text: "relevance" }, zeroline: true } });
    }
    let lev = lSel.value;
    const key = (l) => (view === "att" ? l : l + "r");
    if (!a[key(lev)]) lev = lev === "w" ? "t" : "w";
    const arr = await get(key(lev));
    const n = arr.shape[arr.shape.length - 1];
    let z;
    if (view === "att") {
      const L = +layerSel.value, H = arr.shape[1], hd = headSel.value, nn = n * n;
      if (hd === "mean") {
        const sum = new Float32Array(nn);
        for (let k = 0; k < H; k++) { const o = (L * H + k) * nn; for (let i = 0; i < nn; i++) sum[i] += arr[o + i] / H; }
        z = X.rows(sum, 0, n, n);
      } else z = X.rows(arr, (L * H + +hd) * nn, n, n);
    } else z = X.rows(arr, 0, n, n);
    let labels = lev === "w" ? e.f : a.tokens;
    if (!labels || labels.length !== n) labels = range(n).map(String);
    const safe = labels.map(pe);
    const text = z.map((row, i) => row.map((_, j) => safe[i] + " \u2192 " + safe[j]));
    note.textContent = (view === "att" ? "Rows are queries, columns the keys they attend to" : "Attention rollout (Abnar & Zuidema 2020): head means with the residual path, multiplied through the layers") +
      (lev === "t" && a.q !== null ? "; the outlined row is the token that answers." : ".");
    const shapes = lev === "t" && a.q !== null && a.q < n ? [{ type: "rect", xref: "x", yref: "y", x0: -0.5, x1: n - 0.5, y0: a.q - 0.5, y1: a.q + 0.5, line: { color: "#b2182b", width: 1.5 } }] : [];
    const side = Math.max(320, Math.min(680, 150 + n * 22));
    return X.plot(fig, [{ type: "heatmap", z, text, colorscale: SEQ, zmin: 0, hovertemplate: "%{text}<br>%{z:.4f}<extra></extra>",
      colorbar: { thickness: 10, len: 0.9, outlinewidth: 0 } }],
      { height: side, shapes, margin: { l: 90, r: 10, t: 20, b: 80 },
        xaxis: labelAxis(labels, { tickangle: -45, constrain: "domain" }),
        yaxis: labelAxis(labels, { autorange: "reversed", scaleanchor: "x", constrain: "domain" }) });
  }
  for (const s of [vSel, lSel, layerSel, headSel]) s.addEventListener("change", () => X.figure(draw()));
  jobs.push(draw);
}

// Methods side by side on one scale (score / max |score|), and how well their rankings agree.
function compareBlock(g, scoresList, jobs) {
  const c = g.cmp;
  if (!c || !c.rows.length) return null;
  const exps = c.rows.map((i) => g.exps[i]);
  const box = h("div", { class: "compare" }, [h("h4", { text: "Method comparison" })]);
  if (exps[0].g !== "pixel") {
    const fig = h("div", { class: "fig cmp-fig" });
    box.append(fig);
    jobs.push(() => {
      const f = exps[0].f, sf = f.map(pe);
      const z = c.rows.map((i) => { const s = scoresList[i], m = X.maxAbs(s) || 1; return Array.from(s, (v) => v / m); });
      const text = c.rows.map((i) => Array.from(scoresList[i], (v, j) => sf[j] + "<br>" + pe(g.exps[i].title) + ": " + fmt(v, 4)));
      return X.plot(fig, [{ type: "heatmap", z, text, x: range(f.length), y: range(exps.length), colorscale: SCALE, zmin: -1, zmax: 1,
        xgap: 1, ygap: 2, hovertemplate: "%{text}<br>normalised %{z:.3f}<extra></extra>",
        colorbar: { thickness: 10, title: { text: "score / max|score|", side: "right" }, tickvals: [-1, 0, 1], outlinewidth: 0 } }],
        { height: 110 + 34 * exps.length + (f.length > 12 ? 40 : 0), margin: { l: 150, r: 10, t: 10, b: f.length > 12 ? 90 : 50 },
          xaxis: labelAxis(f, { tickangle: f.length > 12 ? -45 : 0 }), yaxis: labelAxis(exps.map((x) => x.title), { autorange: "reversed" }, 24) });
    });
  } else {
    box.append(h("p", { class: "note", text: "The overlays above share one scale: each map is divided by its own max |score|." }));
  }
  if (c.pairs.length) {
    const tb = h("tbody");
    for (const [i, j, rho, top] of c.pairs) {
      const rc = h("td", { class: "num", text: fmt(rho, 3) });
      if (rho !== null) rc.style.background = X.divColor(rho * 0.6);
      tb.append(h("tr", null, [h("td", { text: g.exps[i].title }), h("td", { text: g.exps[j].title }), rc,
        h("td", { class: "num", text: top === null ? "\u2014" : Math.round(top * c.k) + " / " + c.k + "  (" + Math.round(top * 100) + "%)" })]));
    }
    box.append(h("table", { class: "agree" }, [h("thead", null, [h("tr", null, [h("th", { text: "Method" }), h("th", { text: "vs" }),
      h("th", { class: "num", text: "Spearman \u03c1" }), h("th", { class: "num", text: "Top-k overlap" })])]), tb]));
    box.append(h("p", { class: "note", text: "Spearman \u03c1: rank correlation of the signed scores (1 same order, \u22121 reversed). Top-k overlap: share of the " + c.basis + " that both methods pick." }));
  } else if (exps.length < 2) {
    box.append(h("p", { class: "note", text: "One method for this target: nothing to compare it with." }));
  }
  return box;
}

// Everything about one target: a card per method, then the comparison.
X.buildGroup = async function (d, g, container) {
  const jobs = [], scoresList = [];
  const lm = d.family === "causal-lm";
  const wrap = h("div", { class: "group" }, [h("div", { class: "group-head" }, [
    h("span", { class: "gk", text: lm ? (g.whole ? "Explaining" : "Generated token") : "Target" }),
    h("span", { class: "label" + (lm && !g.whole ? " tokentext" : ""), text: g.title }),
    g.t.p !== null && !g.whole ? h("span", { class: "prob", text: "p = " + fmt(g.t.p, 3) }) : null,
    g.t.pos !== null ? h("span", { class: "muted", text: "position " + g.t.pos }) : null])]);
  const pixel = g.exps.some((e) => e.g === "pixel");
  const grid = h("div", { class: "cards" + (pixel ? " img" : "") });
  for (const e of g.exps) { const r = await X.methodCard(d, e, jobs); grid.append(r.card); scoresList.push(r.scores); }
  wrap.append(grid);
  if (g.trust && X.trustPanel) wrap.append(X.trustPanel(g, jobs));
  const cmp = compareBlock(g, scoresList, jobs);
  if (cmp) wrap.append(cmp);
  container.append(wrap);
  X.figure(Promise.all(jobs.map((f) => f())));  // figures follow; the text is usable now
  return wrap;
};
})();
"""
