"""The page's JavaScript, part 3: image overlays, the causal-LM token view, quality figures, start-up."""

APP_JS = r"""
(function () {
"use strict";
const X = window.__explain, h = X.h, pe = X.pe, fmt = X.fmt;
const SCALE = X.META.colorscale;
// Over a picture, scores near 0 are transparent: the same hues, with alpha rising towards +-max.
const OVERLAY = SCALE.map(([t, c]) => [t, "rgba(" + [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).join(",") + "," + Math.min(1, 2 * Math.abs(t - 0.5)).toFixed(2) + ")"]);

// ---- images: the original beside the attribution over it; one opacity control per input ----
X.imageFigure = function (d, e, scores, card, jobs) {
  const fig = h("div", { class: "fig img-fig" });
  card.append(fig, h("div", { class: "note", text: "max |score| = " + fmt(e.max, 4) +
    (e.fac > 1 ? " \u00b7 shown as " + e.fac + "\u00d7" + e.fac + " pixel block means" : "") }));
  jobs.push(() => {
    const [hh, ww] = scores.shape, f = e.fac || 1, m = X.maxAbs(scores) || 1;
    const z = X.rows(scores, 0, hh, ww).map((r) => r.map((v) => v / m));
    const heat = { type: "heatmap", z, x0: (f - 1) / 2, dx: f, y0: (f - 1) / 2, dy: f, colorscale: d.img ? OVERLAY : SCALE, zmin: -1, zmax: 1,
      opacity: d.opacity, showscale: false, hovertemplate: "pixel (%{x}, %{y})<br>score / max|score| = %{z:.3f}<extra></extra>" };
    const axis = { visible: false, constrain: "domain" };
    let data, layout;
    if (d.img) {
      const src = "data:image/png;base64," + d.img;
      data = [{ type: "image", source: src, hoverinfo: "skip", xaxis: "x", yaxis: "y" },
        { type: "image", source: src, hoverinfo: "skip", xaxis: "x2", yaxis: "y2" }, Object.assign(heat, { xaxis: "x2", yaxis: "y2" })];
      layout = { xaxis: Object.assign({ domain: [0, 0.48] }, axis), yaxis: Object.assign({ scaleanchor: "x", autorange: "reversed" }, axis),
        xaxis2: Object.assign({ domain: [0.52, 1] }, axis), yaxis2: Object.assign({ anchor: "x2", scaleanchor: "x2", autorange: "reversed" }, axis),
        annotations: [["original", 0.24], ["attribution", 0.76]].map(([t, x]) => ({ text: t, x, y: 1.02, xref: "paper", yref: "paper", showarrow: false, yanchor: "bottom", font: { size: 11, color: "#57606a" } }))};
      fig.dataset.heat = "2";
    } else {
      data = [heat];
      layout = { xaxis: axis, yaxis: Object.assign({ scaleanchor: "x", autorange: "reversed" }, axis) };
      fig.dataset.heat = "0";
    }
    const height = Math.round((d.img ? 0.46 : 0.96) * (fig.clientWidth || 360) * hh / ww) + 28;
    return X.plot(fig, data, Object.assign(layout, { height: Math.min(height, 520), margin: { l: 6, r: 6, t: 22, b: 6 } }));
  });
};
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

// ---- causal LM: click a generated token to see its attribution over the context ----
const shown = (t) => t.replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
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
    const chip = h("button", { type: "button", class: "chip tok" + (g.whole ? " whole" : ""), text: g.whole ? "whole continuation" : shown(g.title) });
    if (!g.whole) X.tip(chip, () => [g.title, "p = " + fmt(g.t.p, 3), "position " + g.t.pos + " \u00b7 token id " + g.t.i]);
    chip.addEventListener("click", () => X.whenDone(select(g, chip)));
    chips.push(chip);
    strip.append(chip);
  }
  body.append(h("div", { class: "gen-head", text: "Generated tokens \u2014 click one to see its attribution over the context" }), strip, panel);
  const first = whole.length ? chips.length - 1 : 0;
  await select(tokens.concat(whole)[first], chips[first]);
}

X.buildInput = async function (body, d) {
  body.textContent = "";
  body.classList.remove("pending");
  d.opacity = 0.85;
  if (!d.groups.length) return;
  if (d.groups.some((g) => g.exps.some((e) => e.g === "pixel"))) body.append(opacityControl(body, d));
  if (d.family === "causal-lm") return buildLM(body, d);
  for (const g of d.groups) await X.buildGroup(d, g, body);
};

// ---- run-level quality figures ----
function qualityFigure(div, s) {
  const floor = s.log ? Math.max(Math.min(...s.y.filter((v) => v > 0), s.limit || 1) / 10, 1e-12) : null;
  const y = s.log ? s.y.map((v) => Math.max(v, floor)) : s.y;
  const shapes = s.limit !== null ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: s.limit, y1: s.limit, line: { color: "#b2182b", dash: "dash", width: 1 } }] : [];
  return X.plot(div, [{ type: "scatter", mode: "markers", x: s.x, y, customdata: s.y, text: s.text.map(pe),
    marker: { size: 7, color: s.bad.map((b) => (b ? "#b2182b" : "#4a6fa5")), opacity: 0.8 },
    hovertemplate: "%{text}<br>%{customdata:.4g}<extra></extra>" }],
    { height: 220, shapes, margin: { l: 60, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "input" }, zeroline: false, dtick: Math.max(1, Math.ceil((Math.max(...s.x) - Math.min(...s.x)) / 10)) },
      yaxis: s.log ? { type: "log", dtick: 1, exponentformat: "power", zeroline: false } : { zeroline: false } });
}

// ---- start-up ----
const filter = document.getElementById("filter");
if (filter) filter.addEventListener("input", () => {
  const q = filter.value.trim().toLowerCase();
  for (const tr of document.querySelectorAll("#index tbody tr")) tr.hidden = !!q && !tr.textContent.toLowerCase().includes(q);
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
"""
