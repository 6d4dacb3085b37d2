/* The report page's JavaScript, trust part: the per-method trust panel of a target and the run's sanity figure.
 * Same rules as core.js: text reaches the DOM through textContent only; Plotly strings through `pe`. */
(function () {
"use strict";
const X = window.__explain, h = X.h, pe = X.pe, fmt = X.fmt;
const DEFS = X.META.trust || {};
const FAITH = ["deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency"];
const RAT = ["rationale_precision", "pointing_game"];
const LINES = ["#0b5cad", "#d9730d", "#2e8540", "#8250df", "#b2182b", "#57606a", "#1b7c83"];
X.LINES = LINES;
const arrow = (k) => (DEFS[k] && DEFS[k].better === "lower" ? " \u2193" : DEFS[k] && DEFS[k].better === "higher" ? " \u2191" : "");
const better = (k) => (DEFS[k] && DEFS[k].better ? DEFS[k].better + " is better" : "");

function headCell(key, title) {
  const d = DEFS[key] || { title: key, help: "" };
  const th = h("th", { class: "num", "data-key": key }, [h("span", { text: (title || d.title) + arrow(key) }),
    d.better ? h("div", { class: "dir", text: better(key) }) : null]);
  X.tip(th, () => [(title || d.title), d.help]);
  return th;
}
const dash = () => h("td", { class: "num muted", text: "\u2014" });

function faithCell(f, title) {
  const ok = f.ok === true, bad = f.ok === false;
  const td = h("td", { class: "num tcell" + (ok ? " good" : bad ? " bad" : ""), "data-metric": f.key }, [
    h("span", { class: "v", text: fmt(f.v, 3) }), " ",
    h("span", { class: "mark", text: ok ? "\u2713" : bad ? "\u2717" : "" }),
    h("div", { class: "rnd" }, ["random ", h("span", { class: "rv", text: fmt(f.r, 3) })])]);
  X.tip(td, () => [title + " \u00b7 " + DEFS[f.key].title, "this method " + fmt(f.v, 4) + " \u00b7 random orders " + fmt(f.r, 4),
    f.ok === null ? "no random baseline" : (ok ? "better than random" : "no better than random") + " (" + better(f.key) + ")"]);
  return td;
}

X.trustPanel = function (g, jobs) {
  const t = g.trust, rows = t.rows;
  const faith = FAITH.filter((k) => rows.some((r) => r.faith.some((f) => f.key === k)));
  const self = rows.some((r) => r.self), sanity = rows.some((r) => r.sanity), agree = rows.some((r) => r.agree);
  const rats = RAT.filter((k) => rows.some((r) => r.rat && r.rat[k] !== undefined));
  const head = h("tr", null, [h("th", { text: "Method" })]);
  for (const k of faith) head.append(headCell(k));
  if (self) {
    const th = h("th", { class: "num", "data-key": "self" }, [h("span", { text: "Self-checks" }), h("div", { class: "dir", text: "the method's test of itself" })]);
    X.tip(th, () => ["Self-checks", "Each method's test of its own estimate, which could fail. IG completeness: the scores add up to the output change. SHAP and LIME stability: two independent estimates pick the same top features. LIME surrogate fit: the linear surrogate reproduces the model (R\u00b2)."]);
    head.append(th);
  }
  if (sanity) head.append(headCell("sanity_rank_corr"));
  if (agree) head.append(headCell("agreement_spearman"));
  for (const k of rats) head.append(headCell(k));
  const body = h("tbody");
  for (const r of rows) {
    const e = g.exps.find((x) => x.m === r.m) || { title: r.m };
    const tr = h("tr", { "data-method": r.m, class: r.sanity && r.sanity.flag ? "sanity-flagged" : null }, [h("td", null, [h("strong", { text: e.title })])]);
    if (faith.length) {
      if (!r.metrics) tr.append(h("td", { class: "muted nometrics", colspan: faith.length, text: "no trust metrics for this method: its self-check only" }));
      else for (const k of faith) { const f = r.faith.find((x) => x.key === k); tr.append(f ? faithCell(f, e.title) : dash()); }
    }
    if (self) {
      if (!r.self) tr.append(dash());
      else {
        // One line per self-check: its verdict and figure; hover for the method's own sentence and what it would catch.
        const bad = r.self.some((c) => c.ok === false);
        const td = h("td", { class: "num self" + (bad ? " bad" : ""), "data-metric": "self" }, r.self.map((c) => h("div", { class: "line", "data-check": c.key }, [
          h("span", { class: "lbl", text: (DEFS[c.key] ? DEFS[c.key].title : c.key) + " " }),
          h("span", { class: "v", text: (c.ok === true ? "\u2713 " : c.ok === false ? "\u26a0 " : "") + c.shown })])));
        X.tip(td, () => r.self.map((c) => (c.ok === true ? "passed: " : c.ok === false ? "failed: " : "") + c.s));
        tr.append(td);
      }
    }
    if (sanity) {
      if (!r.sanity) tr.append(dash());
      else {
        const td = h("td", { class: "num" + (r.sanity.flag ? " bad" : ""), "data-metric": "sanity_rank_corr" }, [
          h("span", { class: "v", text: fmt(r.sanity.rho, 3) }),
          r.sanity.flag ? h("div", null, [h("span", { class: "pill bad sanity-flag", text: "\u26a0 flagged" })]) : h("div", { class: "rnd", text: "changes with the model" })]);
        X.tip(td, () => [DEFS.sanity_rank_corr.title + " " + fmt(r.sanity.rho, 4), r.sanity.flag
          ? "Flagged: the explanation barely changes when the model's layers are randomised \u2014 it may describe the input, not the model."
          : "Not flagged: the explanation changes when the model is randomised, as it should.", DEFS.sanity_rank_corr.help]);
        tr.append(td);
      }
    }
    if (agree) {
      if (!r.agree) tr.append(dash());
      else {
        // Top-k overlap first: on short texts Spearman mostly ranks near-zero words against each other.
        const top = r.agree.top;
        const td = h("td", { class: "num", "data-metric": "agreement_spearman" }, top !== null
          ? [h("span", { class: "v", text: Math.round(top * 100) + "% top features shared" }), h("div", { class: "rnd", text: "\u03c1 " + fmt(r.agree.rho, 3) })]
          : [h("span", { class: "v", text: "\u03c1 " + fmt(r.agree.rho, 3) })]);
        X.tip(td, () => ["Agreement of " + e.title].concat(r.agree.pairs.map(([o, rho, top]) => {
          const oe = g.exps.find((x) => x.m === o);
          return "vs " + (oe ? oe.title : o) + ": \u03c1 " + fmt(rho, 3) + (top !== null ? " \u00b7 top-k " + fmt(top, 2) : "");
        })));
        tr.append(td);
      }
    }
    for (const k of rats) {
      const v = r.rat ? r.rat[k] : undefined;
      tr.append(v === undefined ? dash() : h("td", { class: "num", "data-metric": k }, [h("span", { class: "v", text: k === "pointing_game" ? (v >= 0.5 ? "hit" : "miss") : fmt(v, 3) })]));
    }
    body.append(tr);
  }
  const box = h("div", { class: "trust" }, [h("h4", { text: "Can this explanation be trusted?" }),
    h("div", { class: "twrap" }, [h("table", { class: "trust-table" }, [h("thead", null, [head]), body])])]);
  const how = [];
  if (faith.length) how.push("\u2713 / \u2717: better / no better than the same figure for random feature orders" +
    (t.removal ? "; features removed by " + t.removal : "") + (t.output ? ", tracking the model's " + t.output : "") + ".");
  how.push("Hover a column or a cell for what it means.");
  box.append(h("p", { class: "note", text: how.join(" ") }));
  const withCurves = rows.filter((r) => r.curves);
  if (withCurves.length) {
    const fig = h("div", { class: "fig curves-fig" });
    box.append(fig);
    jobs.push(() => curves(fig, withCurves, g));
  }
  return box;
};

function curves(fig, rows, g) {
  const data = [];
  rows.forEach((r, n) => {
    const e = g.exps.find((x) => x.m === r.m) || { title: r.m }, c = r.curves, color = LINES[n % LINES.length];
    data.push({ type: "scatter", mode: "lines", x: c.x, y: c.del, name: pe(e.title), legendgroup: r.m, line: { color, width: 2 },
      hovertemplate: pe(e.title) + "<br>%{x:.0%} removed: %{y:.4g}<extra></extra>" });
    data.push({ type: "scatter", mode: "lines", x: c.x, y: c.ins, name: pe(e.title), legendgroup: r.m, showlegend: false,
      xaxis: "x2", yaxis: "y2", line: { color, width: 2 }, hovertemplate: pe(e.title) + "<br>%{x:.0%} inserted: %{y:.4g}<extra></extra>" });
  });
  const c0 = rows[0].curves;
  if (c0.del_r) data.push({ type: "scatter", mode: "lines", x: c0.x, y: c0.del_r, name: "random order", legendgroup: "random",
    line: { color: "#8c959f", dash: "dash", width: 1.5 }, hovertemplate: "random<br>%{x:.0%} removed: %{y:.4g}<extra></extra>" });
  if (c0.ins_r) data.push({ type: "scatter", mode: "lines", x: c0.x, y: c0.ins_r, name: "random order", legendgroup: "random", showlegend: !c0.del_r,
    xaxis: "x2", yaxis: "y2", line: { color: "#8c959f", dash: "dash", width: 1.5 }, hovertemplate: "random<br>%{x:.0%} inserted: %{y:.4g}<extra></extra>" });
  const ax = (t) => ({ title: { text: t, font: { size: 11 }, standoff: 4 }, tickformat: ".0%", range: [0, 1], zeroline: false });
  return X.plot(fig, data, { height: 290, margin: { l: 55, r: 10, t: 30, b: 40 }, legend: { orientation: "h", x: 0, y: -0.32, yanchor: "top" },
    xaxis: Object.assign(ax("features removed, top-ranked first"), { domain: [0, 0.46] }),
    xaxis2: Object.assign(ax("features inserted, top-ranked first"), { domain: [0.54, 1] }),
    yaxis: { title: { text: "model output" }, zeroline: false }, yaxis2: { anchor: "x2", zeroline: false },
    annotations: [["Deletion (lower area is better)", 0.23], ["Insertion (higher area is better)", 0.77]].map(([text, x]) => ({
      text, x, y: 1.04, xref: "paper", yref: "paper", showarrow: false, yanchor: "bottom", font: { size: 11, color: "#57606a" } })) });
}

// ---- the run's sanity cascade: mean rho per stage and method ----
X.sanityFigure = function (div, s) {
  const methods = Object.keys(s.curves), data = [];
  methods.forEach((m, n) => {
    const c = s.curves[m], x = c.mean.map((_, i) => i + 1);
    const title = pe((s.titles || {})[m] || m);
    data.push({ type: "scatter", mode: "lines+markers", x, y: c.mean, name: title, line: { color: LINES[n % LINES.length] },
      error_y: { type: "data", array: c.std, visible: true, thickness: 1 },
      text: x.map((i) => pe(s.blocks[i - 1] || "stage " + i)), hovertemplate: title + " \u00b7 randomised down to %{text}<br>\u03c1 %{y:.3f}<extra></extra>" });
  });
  const n = Math.max(1, ...methods.map((m) => s.curves[m].mean.length));
  return X.plot(div, data, { height: 240, margin: { l: 55, r: 10, t: 10, b: 60 }, legend: { orientation: "h", y: -0.35 },
    xaxis: { title: { text: "randomisation stage (output layer first)" }, tickmode: "array", tickvals: Array.from({ length: n }, (_, i) => i + 1), zeroline: false },
    yaxis: { title: { text: "Spearman \u03c1" }, range: [-1.05, 1.05], zeroline: true },
    shapes: [-1, 1].map((sgn) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: sgn * 0.5, y1: sgn * 0.5, line: { color: "#b2182b", dash: "dot", width: 1 } })) });
};
})();
