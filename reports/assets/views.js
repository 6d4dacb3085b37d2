/* The report page's JavaScript, part 2: method cards, attention explorer, method comparison, target groups.
 * Same rules as core.js: text reaches the DOM through textContent only; Plotly strings through `pe`. */
(function () {
"use strict";
const X = window.__explain, h = X.h, pe = X.pe, fmt = X.fmt;
const SCALE = X.META.colorscale;
const ATT = X.META.attscale, AGREE = X.META.agreescale;
const range = (n) => Array.from({ length: n }, (_, i) => i);

X.plot = function (div, data, layout, config) {
  const base = { font: X.FONT, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 70, r: 20, t: 28, b: 40 }, hoverlabel: { font: { size: 12 } } };
  return X.loadPlotly().then((P) => P.react(div, data, Object.assign(base, layout), Object.assign({}, X.CONFIG, config || {}))).then((gd) => {
    // Out of the tab order: a chart's buttons are for the mouse; its values are in the page's text.
    for (const b of div.querySelectorAll(".modebar-btn")) b.setAttribute("tabindex", "-1");
    return gd;
  });
};
const clip = (s, k) => (String(s).length > k ? String(s).slice(0, k - 1) + "\u2026" : String(s));
// Every word labelled (automargin: plotly grows the margins to fit every tick label, so none is clipped);
// a long text's figure grows wider than the page instead (X.wide) and scrolls, with the mode bar's zoom.
function labelAxis(labels, extra, max) {
  const vals = range(labels.length);
  return Object.assign({ tickmode: "array", tickvals: vals, ticktext: vals.map((i) => pe(clip(labels[i], max || 18))),
    tickfont: { size: labels.length > 30 ? 10 : 11 }, showgrid: false, zeroline: false, automargin: true }, extra || {});
}
X.labelAxis = labelAxis;
const PER_LABEL = 15;  // px per word on a word axis: a label each, readable
X.wide = function (fig, n, extra) {  // a figure of n words along x, inside its .hscroll wrapper
  const need = n * PER_LABEL + (extra || 160);
  fig.style.minWidth = need > 600 ? need + "px" : "";
};
X.scroller = (fig) => h("div", { class: "hscroll" }, [fig]);

function checksBlock(lines) {
  const ul = h("ul", { class: "checks" });
  for (const c of lines) {
    ul.append(h("li", { class: c.bad ? "bad" : null }, [
      h("span", { class: "ck-label", text: c.label }), " ", h("span", { class: "ck-value", text: c.value }),
      c.help ? h("div", { class: "ck-help", text: c.help }) : null]));
  }
  return ul;
}

// One card per explanation: no-evidence line, heat map (or image overlay) with its colour bar, attention, checks, cost.
X.methodCard = async function (d, e, jobs) {
  const scores = await X.unpack(e.s);
  const grey = !!e.noev;
  const card = h("div", { class: "card method" + (e.flag ? " flagged" : "") + (grey ? " noev" : ""), "data-method": e.m }, [
    h("div", { class: "card-head" }, [
      h("span", { class: "mname", text: e.title }),
      e.flag ? h("span", { class: "flag", text: e.flag }) : null,
      h("span", { class: "cost", text: e.cost })])]);
  if (grey) card.append(h("div", { class: "noev-line", text: e.noev }));
  if (e.g === "pixel") X.imageFigure(d, e, scores, card, jobs);
  else {
    const heat = X.heatText(e.f, scores, e.ft, { rank: X.ranks(scores), max: e.max, own: e.own, units: e.units, grey, what: e.title });
    card.append(heat);
    if (!grey) {
      const bar = X.scaleBar(e.max, e.units, e.shared ? "the report's scale" : "", e.total);
      bar._shared = e.shared;
      heat._bar = bar;
      card.append(bar);
    }
  }
  if (e.att) attentionExplorer(e, scores, card, jobs);
  if (e.vit && X.vitViews) X.vitViews(d, e, card, jobs);  // assets/vit.js
  if (e.checks.length) card.append(checksBlock(e.checks));
  if (e.settings) card.append(h("details", { class: "settings-line" }, [h("summary", { text: "settings" }), h("div", { text: e.settings })]));
  return { card, scores };
};

// A layers x heads overview (bertviz's model view): each head's map on the fixed 0-1 scale; a click opens it.
function headGrid(arr, labels, q, onPick) {
  const [L, H, n] = [arr.shape[0], arr.shape[1], arr.shape[2]];
  const stops = ATT.map(([t, c]) => [t, [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16))]);
  const colour = (v) => {
    const t = Math.max(0, Math.min(1, v));
    let k = 1;
    while (k < stops.length - 1 && stops[k][0] < t) k++;
    const [t0, c0] = stops[k - 1], [t1, c1] = stops[k], f = (t - t0) / (t1 - t0 || 1);
    return c0.map((c, i) => Math.round(c + f * (c1[i] - c)));
  };
  const grid = h("div", { class: "att-grid", role: "group", "aria-label": "all layers and heads" });
  grid.style.gridTemplateColumns = "56px repeat(" + H + ", minmax(0, 64px))";
  grid.append(h("span"));
  for (let k = 0; k < H; k++) grid.append(h("span", { class: "lab", text: "head " + (k + 1) }));
  const cells = [];
  for (let l = 0; l < L; l++) {
    grid.append(h("span", { class: "lab", text: "layer " + (l + 1) }));
    for (let k = 0; k < H; k++) {
      // A button for the keyboard and screen readers: one tab stop for the grid, arrow keys between heads.
      const c = h("canvas", { width: n, height: n, title: "layer " + (l + 1) + ", head " + (k + 1) + ": click to open", "data-l": l, "data-h": k,
        role: "button", tabindex: l || k ? "-1" : "0", "aria-label": "open layer " + (l + 1) + ", head " + (k + 1) });
      const ctx = c.getContext("2d"), img = ctx.createImageData(n, n), o = (l * H + k) * n * n;
      for (let i = 0; i < n * n; i++) {
        const rgb = colour(arr[o + i]);
        img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      if (q !== null && q < n) { ctx.strokeStyle = "#d9730d"; ctx.lineWidth = Math.max(1, n / 40); ctx.strokeRect(0, q, n, 1); }
      c.addEventListener("click", () => onPick(l, k));
      c.addEventListener("keydown", (ev) => {
        const to = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: H, ArrowUp: -H }[ev.key];
        if (ev.key === "Enter" || ev.key === " ") { onPick(l, k); ev.preventDefault(); return; }
        if (to === undefined) return;
        const next = cells[Math.max(0, Math.min(cells.length - 1, l * H + k + to))];
        for (const x of cells) x.tabIndex = x === next ? 0 : -1;
        next.focus();
        ev.preventDefault();
      });
      cells.push(c);
      grid.append(c);
    }
  }
  // The head shown above is outlined here, however it was chosen (a click, or the dropdowns); "mean": its whole layer.
  grid._mark = (L, hd) => { for (const x of cells) x.classList.toggle("active", L !== null && +x.dataset.l === L && (hd === "mean" || +x.dataset.h === +hd)); };
  return grid;
}

// Attention: per layer and head (or their mean), rollout, and the target's relevance; words or tokens.
function attentionExplorer(e, scores, card, jobs) {
  const a = e.att, cache = {};
  const get = async (k) => (k in cache ? cache[k] : (cache[k] = await X.unpack(a[k])));
  const opt = (v, t) => h("option", { value: v, text: t });
  const field = (label, node) => h("label", { class: "ctl" }, [h("span", { text: label }), node]);
  // Opens on relevance, what the words above show; the overview below opens any head.
  const views = [opt("rel", "Relevance for the target")];
  if (a.w || a.t) views.push(opt("att", "Attention"));
  if (a.wr || a.tr) views.push(opt("roll", "Rollout"));
  const vSel = h("select", { "aria-label": "view" }, views);
  // Tokens first: the answering row ([CLS], or the last token of a decoder) is a token, not a word.
  const levels = [];
  if (a.t || a.tr) levels.push(opt("t", "Tokens"));
  if (a.w || a.wr) levels.push(opt("w", "Words"));
  const lSel = h("select", { "aria-label": "level" }, levels);
  const shape = (a.w || a.t || { shape: [0, 0] }).shape;
  const layerSel = h("select", { "aria-label": "layer", class: "layer" }, range(shape[0]).map((i) => opt(i, "Layer " + (i + 1))));
  const heads = [opt("mean", "Mean over heads")].concat(a.heads === "mean" ? [] : range(shape[1]).map((i) => opt(i, "Head " + (i + 1))));
  const headSel = h("select", { "aria-label": "head", class: "head" }, heads);
  const fig = h("div", { class: "fig att-fig" }), note = h("div", { class: "note" }), overview = h("div", { class: "att-overview" });
  card.append(h("div", { class: "att" }, [
    h("div", { class: "controls" }, [field("View", vSel), field("Level", lSel), field("Layer", layerSel), field("Head", headSel)]),
    X.scroller(fig), note, overview]));
  jobs.push(async () => {
    const key = a.t ? "t" : a.w ? "w" : null;
    if (!key) return;
    const arr = await get(key), labels = key === "t" ? a.tokens : e.f;
    const grid = headGrid(arr, labels, key === "t" ? a.q : null, (l, k) => {
      vSel.value = "att"; lSel.value = key; layerSel.value = String(l); headSel.value = String(k);
      X.figure(draw());
    });
    overview.append(h("div", { class: "note", text: "All layers \u00d7 heads on one fixed 0\u20131 scale (rows: queries; the orange line marks the row that answers). Click a head to open it above." }), grid);
    marker = grid._mark;
    mark();
  });

  let marker = null;
  const mark = () => { if (marker) marker(vSel.value === "att" ? +layerSel.value : null, headSel.value); };
  async function draw() {
    const view = vSel.value;
    layerSel.disabled = headSel.disabled = view !== "att";
    lSel.disabled = view === "rel";
    mark();
    if (view === "rel") {
      note.textContent = "Gradient-weighted attention relevance (Chefer et al. 2021) of each word for the target: the card's heat map as bars.";
      fig.style.width = "";
      X.wide(fig, scores.length);
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
    const marked = lev === "t" && a.q !== null && a.q < n;
    note.textContent = (view === "att" ? "Rows are queries, columns the keys they attend to; attention weights on a fixed 0\u20131 scale" : "Attention rollout (Abnar & Zuidema 2020): head means with the residual path, multiplied through the layers; fixed 0\u20131 scale") +
      (marked ? "; the outlined row (\u25b6) is the token that answers." : lev === "w" ? "; the answering token ([CLS] or the last token) is shown at token level." : ".");
    if (marked) labels = labels.map((t, i) => (i === a.q ? "\u25b6 " + t : t));
    const shapes = marked ? [{ type: "rect", xref: "x", yref: "y", x0: -0.5, x1: n - 0.5, y0: a.q - 0.5, y1: a.q + 0.5, line: { color: "#d9730d", width: 2 } }] : [];
    const side = Math.max(300, 120 + n * (n > 25 ? PER_LABEL : 22));  // a label per row and column; long texts scroll
    fig.style.width = (side + 190) + "px";  // map + labels + colour bar: the bar sits beside the map
    fig.style.maxWidth = "";
    fig.style.minWidth = "";
    return X.plot(fig, [{ type: "heatmap", z, text, colorscale: ATT, zmin: 0, zmax: 1, hovertemplate: "%{text}<br>weight %{z:.4f}<extra></extra>",
      colorbar: { thickness: 12, len: 0.8, outlinewidth: 0, title: { text: "weight", side: "right" }, tickvals: [0, 0.25, 0.5, 0.75, 1] } }],
      { height: side + 60, width: side + 190, shapes, margin: { l: 10, r: 10, t: 10, b: 10 },
        xaxis: labelAxis(labels, { tickangle: -45, constrain: "domain" }, 24),
        yaxis: labelAxis(labels, { autorange: "reversed", scaleanchor: "x", constrain: "domain" }, 24) });
  }
  for (const s of [vSel, lSel, layerSel, headSel]) s.addEventListener("change", () => X.figure(draw()));
  jobs.push(draw);
}

// Methods side by side (each row on its own scale, in its units), and how much their top features agree.
function compareBlock(g, scoresList, jobs) {
  const c = g.cmp;
  if (!c || !c.rows.length) return null;
  const exps = c.rows.map((i) => g.exps[i]);
  const box = h("div", { class: "compare" }, [h("h4", { text: "Method comparison" })]);
  if (exps[0].g !== "pixel" && exps.length > 1) {
    const fig = h("div", { class: "fig cmp-fig" });
    box.append(X.scroller(fig));
    jobs.push(() => {
      const f = exps[0].f, sf = f.map(pe);
      X.wide(fig, f.length);
      const z = c.rows.map((i) => { const s = scoresList[i], m = X.maxAbs(s) || 1; return Array.from(s, (v) => v / m); });
      const text = c.rows.map((i) => Array.from(scoresList[i], (v, j) => sf[j] + "<br>" + pe(g.exps[i].title) + ": " + fmt(v, 4) + " " + pe(g.exps[i].units)));
      return X.plot(fig, [{ type: "heatmap", z, text, x: range(f.length), y: range(exps.length), colorscale: SCALE, zmin: -1, zmax: 1,
        xgap: 1, ygap: 2, hovertemplate: "%{text}<extra></extra>",
        colorbar: { thickness: 10, title: { text: "\u00f7 row max", side: "top", font: { size: 11 } }, tickvals: [-1, 0, 1], outlinewidth: 0 } }],
        { height: 110 + 34 * exps.length + (f.length > 12 ? 40 : 0), margin: { l: 10, r: 10, t: 10, b: 10 },
          xaxis: labelAxis(f, { tickangle: f.length > 12 ? -45 : 0 }), yaxis: labelAxis(exps.map((x) => x.title), { autorange: "reversed" }, 24) });
    });
  }
  if (c.pairs.length) {
    const tb = h("tbody");
    for (const [i, j, , top] of c.pairs) {
      const cell = h("td", { class: "num agree-cell", text: top === null ? "\u2014" : Math.round(top * c.k) + " of " + c.k + "  (" + Math.round(top * 100) + "%)" });
      if (top !== null) {
        const t = Math.max(0, Math.min(1, top)), k = t < 0.5 ? 0 : 1, f = (t - AGREE[k][0]) / (AGREE[k + 1][0] - AGREE[k][0]);
        const a0 = AGREE[k][1], a1 = AGREE[k + 1][1];
        const rgb = [1, 3, 5].map((p) => Math.round(parseInt(a0.slice(p, p + 2), 16) + f * (parseInt(a1.slice(p, p + 2), 16) - parseInt(a0.slice(p, p + 2), 16))));
        cell.style.background = "rgb(" + rgb.join(",") + ")";
        if (t > 0.75) cell.style.color = "#fff";
      }
      tb.append(h("tr", null, [h("td", { text: g.exps[i].title }), h("td", { text: g.exps[j].title }), cell]));
    }
    box.append(h("table", { class: "agree" }, [h("thead", null, [h("tr", null, [h("th", { text: "Method" }), h("th", { text: "vs" }),
      h("th", { class: "num", text: "Top features in common" })])]), tb]));
    box.append(h("p", { class: "note", text: "Agreement: how many of " + c.basis + " both methods pick (explain.metrics.agreement; the same figure as `explain evaluate`)." }));
  } else if (exps.length < 2) {
    box.append(h("p", { class: "note", text: "One method for this target: nothing to compare it with." }));
  }
  return box;
}

// Why A rather than B: per method, the difference of the two classes' scores (classifiers with several targets).
X.contrastBlock = function (d, groups) {
  const usable = groups.filter((g) => !g.whole && g.t.pos === null);
  if (usable.length < 2) return null;
  const opt = (i) => h("option", { value: i, text: usable[i].title });
  const aSel = h("select", { "aria-label": "class A" }, usable.map((_, i) => opt(i)));
  const bSel = h("select", { "aria-label": "class B" }, usable.map((_, i) => opt(i)));
  bSel.value = "1";
  const out = h("div");
  const box = h("div", { class: "contrast", "data-view": "contrast" }, [h("h4", { text: "Contrast: why one class rather than another" }),
    h("div", { class: "controls" }, [h("span", { text: "Why" }), aSel, h("span", { text: "rather than" }), bSel]), out]);
  async function draw() {
    out.textContent = "";
    for (const p of out.querySelectorAll(".js-plotly-plot")) Plotly.purge(p);
    const A = usable[+aSel.value], B = usable[+bSel.value];
    if (A === B) { out.append(h("p", { class: "note", text: "Pick two different classes." })); return; }
    const jobs = [];
    const grid = h("div", { class: "cards" + (A.exps[0].g === "pixel" ? " img" : "") });
    for (const ea of A.exps) {
      const eb = B.exps.find((x) => x.m === ea.m && x.g === ea.g && x.f.length === ea.f.length);
      if (!eb) continue;
      const sa = await X.unpack(ea.s), sb = await X.unpack(eb.s);
      if (sa.length !== sb.length) continue;
      const diff = new Float32Array(sa.length);
      for (let i = 0; i < sa.length; i++) diff[i] = sa[i] - sb[i];
      diff.shape = sa.shape;
      const m = X.maxAbs(diff) || 1;
      const um = /^contribution to (.*)\((.*)\)$/.exec(ea.units);
      const units = um ? "contribution to " + um[1] + "(" + A.title + ") \u2212 " + um[1] + "(" + B.title + ")" : ea.units + ": " + A.title + " minus " + B.title;
      const card = h("div", { class: "card method" }, [h("div", { class: "card-head" }, [h("span", { class: "mname", text: ea.title }),
        h("span", { class: "cost", text: "red: pushes towards " + A.title + ", blue: towards " + B.title })])]);
      if (ea.g === "pixel") {
        const fake = Object.assign({}, ea, { max: m, clip: m, units });
        X.imageFigure(d, fake, diff, card, jobs);
      } else {
        card.append(X.heatText(ea.f, diff, ea.ft, { max: m, units }), X.scaleBar(m, units, ""));
      }
      grid.append(card);
    }
    out.append(grid.childElementCount ? grid : h("p", { class: "note", text: "No method explained both classes on the same features." }));
    await X.runJobs(jobs, out);
  }
  for (const s of [aSel, bSel]) s.addEventListener("change", () => X.whenDone(draw()));
  return { box, draw };
};

// Everything about one target: a card per method, then the comparison.
X.buildGroup = async function (d, g, container) {
  const jobs = [], scoresList = [];
  const lm = d.family === "causal-lm";
  const wrap = h("div", { class: "group" }, [h("div", { class: "group-head" }, [
    h("span", { class: "gk", text: lm ? (g.whole ? "Explaining" : "Generated token") : "Target" }),
    h("span", { class: "label" + (lm && !g.whole ? " tokentext" : ""), text: g.title }),
    g.t.p !== null && !g.whole ? h("span", { class: "prob", text: "p " + X.prob(g.t.p) }) : null,
    g.whole ? h("span", { class: "muted", text: "the log-probability of the whole generated text (sum over its tokens)" }) : null,
    g.t.pos !== null ? h("span", { class: "muted", text: "position " + g.t.pos }) : null])]);
  const pixel = g.exps.some((e) => e.g === "pixel");
  const grid = h("div", { class: "cards" + (pixel ? " img" : "") });
  for (const e of g.exps) { const r = await X.methodCard(d, e, jobs); grid.append(r.card); scoresList.push(r.scores); }
  wrap.append(grid);
  if (g.trust && X.trustPanel) wrap.append(X.trustPanel(g, jobs));
  const cmp = compareBlock(g, scoresList, jobs);
  if (cmp) wrap.append(cmp);
  container.append(wrap);
  X.runJobs(jobs, wrap);  // figures follow (or wait for the section to come into view); the text is usable now
  return wrap;
};
})();
