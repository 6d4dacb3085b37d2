/* The report page's JavaScript, across-inputs part: per-class words or mean maps, and histograms.
 * Same rules as core.js: text reaches the DOM through textContent only; Plotly strings through `pe`. */
(function () {
"use strict";
const X = window.__explain, h = X.h, pe = X.pe, fmt = X.fmt;
const SEQ = [[0, "#ffffff"], [0.2, "#fde0c5"], [0.45, "#f4a582"], [0.7, "#d6604d"], [1, "#67001f"]];
const pct = (v) => (v * 100 >= 10 ? (v * 100).toFixed(1) : (v * 100).toPrecision(2)) + "%";

// ---- words per class: one card per method, a bar per word ----
function wordCard(m, rank) {
  const list = m[rank], top = Math.max(...list.map((w) => (rank === "share" ? w[1] : w[3])), 1e-12);
  const ol = h("ol", { class: "words" });
  for (const [word, share, count, mean, sign] of list) {
    const v = rank === "share" ? share : mean;
    const bar = h("span", { class: "wbar" });
    bar.style.width = (100 * v / top).toFixed(1) + "%";
    bar.style.background = X.divColor((sign < 0 ? -1 : 1) * Math.max(0.35, Math.min(1, Math.abs(sign) * 1.5)));
    const li = h("li", { "data-word": word }, [h("span", { class: "wname", text: word }), h("span", { class: "wtrack" }, [bar]),
      h("span", { class: "wval", text: pct(v) }), h("span", { class: "wcount", text: "in " + count.toLocaleString() })]);
    X.tip(li, () => [word, "mean share of the attribution per explanation: " + pct(share),
      "share where it occurs: " + pct(mean), "occurs in " + count + " of " + m.n + " explanations",
      "mean signed score / max |score|: " + fmt(sign, 3) + (sign >= 0 ? " (supports)" : " (opposes)")]);
    ol.append(li);
  }
  if (!list.length) ol.append(h("li", { class: "muted", text: "no word occurs often enough" }));
  return h("div", { class: "card agg-card", "data-method": m.m }, [h("div", { class: "card-head" }, [h("span", { class: "mname", text: m.title }),
    h("span", { class: "cost", text: m.n.toLocaleString() + " explanations \u00b7 " + m.vocab.toLocaleString() + " distinct words" })]), ol]);
}

function mapCard(m, shape, jobs) {
  const fig = h("div", { class: "fig agg-map" });
  jobs.push(async () => {
    const a = await X.unpack(m.map), [hh, ww] = a.shape;
    return X.plot(fig, [{ type: "heatmap", z: X.rows(a, 0, hh, ww), colorscale: SEQ, zmin: 0, showscale: true,
      colorbar: { thickness: 8, outlinewidth: 0, len: 0.9 }, hovertemplate: "cell (%{x}, %{y})<br>mean |score| / max %{z:.3f}<extra></extra>" }],
      { height: 260, margin: { l: 6, r: 6, t: 6, b: 6 }, xaxis: { visible: false, constrain: "domain" },
        yaxis: { visible: false, scaleanchor: "x", autorange: "reversed", constrain: "domain" } });
  });
  return h("div", { class: "card agg-card", "data-method": m.m }, [h("div", { class: "card-head" }, [h("span", { class: "mname", text: m.title }),
    h("span", { class: "cost", text: m.n.toLocaleString() + " explanations \u00b7 " + shape[0] + "\u00d7" + shape[1] + " cells" })]), fig]);
}

function aggregateView(root, agg) {
  root.textContent = "";
  const panel = h("div", { class: "agg-panel" });
  let rank = "share", current = agg.classes[0];
  const chips = [];
  const strip = h("div", { class: "gen agg-classes", role: "toolbar" });
  async function draw() {
    for (const p of panel.querySelectorAll(".js-plotly-plot")) Plotly.purge(p);
    panel.textContent = "";
    const jobs = [];
    const grid = h("div", { class: "cards agg-cards" + (agg.kind === "maps" ? " img" : "") });
    for (const m of current.methods) grid.append(agg.kind === "maps" ? mapCard(m, agg.shape, jobs) : wordCard(m, rank));
    panel.append(grid);
    await X.figure(Promise.all(jobs.map((f) => f())));
  }
  agg.classes.forEach((c, n) => {
    const chip = h("button", { type: "button", class: "chip" + (n ? "" : " active"), "data-label": c.label },
      [h("span", { text: c.label }), h("span", { class: "cn", text: " " + c.inputs.toLocaleString() })]);
    chip.addEventListener("click", () => { current = c; for (const x of chips) x.classList.toggle("active", x === chip); X.whenDone(draw()); });
    chips.push(chip);
    strip.append(chip);
  });
  const tools = [h("span", { class: "gk", text: agg.classes.length > 1 ? "Class" : "" }), strip];
  if (agg.kind === "words") {
    const sel = h("select", { "aria-label": "rank words by" }, [h("option", { value: "share", text: "mean share over the class (frequent and strong)" }),
      h("option", { value: "mean", text: "share where the word occurs (strong, seen \u2265 3 times)" })]);
    sel.addEventListener("change", () => { rank = sel.value; X.whenDone(draw()); });
    tools.push(h("label", { class: "ctl" }, [h("span", { text: "Rank by" }), sel]));
  }
  root.append(h("div", { class: "toolbar agg-tools" }, tools), panel);
  return draw();
}

// ---- histograms: one step line per method, precomputed bins ----
X.histFigure = function (div, s) {
  if (s.zeros) div.parentNode.append(h("p", { class: "note", text: s.zeros + " exact zero" + (s.zeros > 1 ? "s" : "") + (s.traces.length ? " not drawn on the log axis" : ": every value is exactly 0") }));
  if (!s.traces.length) { div.remove(); return Promise.resolve(); }
  const data = s.traces.map((t, n) => ({ type: "scatter", mode: "lines", x: s.edges, y: t.counts.concat([t.counts[t.counts.length - 1]]),
    line: { shape: "hv", color: X.LINES[n % X.LINES.length], width: 1.5 }, fill: "tozeroy", opacity: 0.5, name: pe(t.title) + " (n = " + t.n + ")",
    hovertemplate: pe(t.title) + "<br>from %{x:.3g}: %{y} explanations<extra></extra>" }));
  const shapes = [], annotations = [];
  for (const [v, label, color] of [[s.random, "random", "#57606a"], [s.limit, "limit", "#b2182b"]]) {
    if (v === null || v === undefined) continue;
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: v, x1: v, y0: 0, y1: 1, line: { color, dash: "dash", width: 1.5 } });
    annotations.push({ text: label, x: s.log ? Math.log10(v) : v, y: 1, xref: "x", yref: "paper", showarrow: false, yanchor: "bottom", font: { size: 10, color } });
  }
  return X.plot(div, data, { height: 230, shapes, annotations, margin: { l: 50, r: 10, t: 18, b: 40 }, showlegend: s.traces.length > 1,
    legend: { orientation: "h", y: -0.25 }, xaxis: s.log ? { type: "log", exponentformat: "power", zeroline: false } : { zeroline: false },
    yaxis: { title: { text: "explanations" }, rangemode: "tozero" } });
};

const D = X.META.dataset;
if (D && D.agg) {
  const root = document.getElementById("agg-view");
  if (root) X.lazy(root, () => X.whenDone(aggregateView(root, D.agg)));
}
const grid = document.getElementById("dist-grid");
if (D && grid) for (const s of D.dists) {
  const fig = h("div", { class: "fig dist-fig", "data-key": s.key });
  const box = h("div", { class: "dist" }, [h("div", { class: "dist-title", text: s.title }), fig]);
  X.tip(box.firstChild, () => [s.title, s.help]);
  grid.append(box);
  X.lazy(fig, () => X.figure(X.histFigure(fig, s)));
}
for (const s of X.META.qhist || []) {
  const div = document.getElementById("qh-" + s.key);
  if (div) X.lazy(div, () => X.figure(X.histFigure(div, s)));
}
const sf = document.getElementById("sanity-fig");
if (sf && X.META.sanity) X.lazy(sf, () => X.figure(X.sanityFigure(sf, X.META.sanity)));
})();
