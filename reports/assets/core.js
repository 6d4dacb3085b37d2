/* The report page's JavaScript, part 1: DOM building, data decoding, colours, tooltips, lazy rendering.
 *
 * Rules the code keeps: data reaches the DOM only through textContent, setAttribute of fixed
 * attribute names, or Plotly strings passed through `pe` (HTML-entity escaped, since Plotly reads
 * a subset of HTML in its labels). No innerHTML anywhere.
 * Inlined into every report by reports/assets_files.py, first of the page's scripts.
 */
(function () {
"use strict";
// The self-contained page carries plotly.js gzipped and base64-coded (reports/plotly_bundle.py): its source text.
async function plotlySource(el) {
  if (el.dataset.encoding !== "gzip-base64") return el.textContent;
  const bin = atob(el.textContent.trim()), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}
const X = (window.__explain = window.__explain || {});
const META = JSON.parse(document.getElementById("explain-meta").textContent);
X.META = META;

// ---- DOM ----
function h(tag, props, kids) {
  const n = document.createElement(tag);
  if (props) for (const k of Object.keys(props)) {
    const v = props[k];
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") n.className = v;
    else if (k === "text") n.textContent = String(v);
    else if (k.slice(0, 2) === "on") n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, String(v));
  }
  if (kids) for (const c of kids) if (c !== null && c !== undefined) n.append(c);
  return n;
}
X.h = h;
// Plotly renders a subset of HTML in its strings: escape every data string given to it.
X.pe = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
X.fmt = function (x, d) {
  d = d || 4;
  if (x === null || x === undefined || !isFinite(x)) return "\u2014";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return String(Number(x.toPrecision(d)));
  return x.toExponential(d - 1);
};

X.prob = (p) => (p >= 0.9995 ? "> 0.999" : p > 0 && p < 0.0005 ? "< 0.001" : p.toFixed(3));
X.clean = (t) => String(t).replace(/^##/, "").replace(/^[\u0120\u2581]/, " ").replace(/\u010a/g, "\n");

// ---- arrays: base64, optional deflate, float32 or 12-bit quantised ----
function bytes(b64) {
  const s = atob(b64), u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}
async function inflate(u) {
  const stream = new Blob([u]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
X.unpack = async function (p) {
  if (!p) return null;
  let u = bytes(p.b);
  if (p.z) u = await inflate(u);
  let out;
  if (p.dt === "f4") {
    out = new Float32Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength));
  } else {
    const n = u.length >> 1, off = p.off, s = p.s;
    out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = ((u[i] | (u[n + i] << 8)) - off) * s;
  }
  out.shape = p.shape;
  return out;
};
X.maxAbs = function (a) {
  let m = 0;
  for (let i = 0; i < a.length; i++) { const v = Math.abs(a[i]); if (v > m) m = v; }
  return m;
};
X.rows = function (flat, offset, n, m) {  // (n, m) 2-D array starting at flat[offset]
  const z = new Array(n);
  for (let r = 0; r < n; r++) z[r] = Array.from(flat.subarray(offset + r * m, offset + (r + 1) * m));
  return z;
};

// ---- colours: one diverging scale, centred at 0, shared with Plotly and the legend ----
const STOPS = META.colorscale.map(([t, c]) => [t, [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16))]);
X.divColor = function (v) {
  const t = (Math.max(-1, Math.min(1, v || 0)) + 1) / 2;
  let k = 1;
  while (k < STOPS.length - 1 && STOPS[k][0] < t) k++;
  const [t0, c0] = STOPS[k - 1], [t1, c1] = STOPS[k];
  const f = t1 > t0 ? (t - t0) / (t1 - t0) : 0;
  return "rgb(" + c0.map((c, i) => Math.round(c + f * (c1[i] - c))).join(",") + ")";
};
// The mode bar holds only these buttons, named one by one: plotly's "share" button (sendDataToCloud)
// opens a window to its cloud with the chart's data, words included, which the page's security
// policy cannot stop; a button a later plotly.js adds does not appear unless it is listed here.
X.MODEBAR = ["zoom2d", "pan2d", "zoomIn2d", "zoomOut2d", "resetScale2d", "toImage"];
X.CONFIG = { displaylogo: false, responsive: true, modeBarButtons: [X.MODEBAR], showSendToCloud: false,
  showEditInChartStudio: false, showLink: false, plotlyServerURL: "", toImageButtonOptions: { format: "png", scale: 2 } };
X.FONT = { family: "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", size: 12, color: "#24292f" };

// ---- one shared tooltip, filled with textContent: on hover, and on keyboard focus ----
const tip = h("div", { class: "tip", role: "tooltip" });
document.body.append(tip);
function showTip(lines, x, y) {
  tip.textContent = "";
  for (const [i, line] of lines.entries()) if (line) tip.append(h("div", { class: i ? "" : "tip-head", text: line }));
  tip.style.display = "block";
  const w = tip.offsetWidth;
  tip.style.left = (x + 14 + w > innerWidth ? Math.max(4, x - w - 10) : x + 14) + "px";
  tip.style.top = (y + 16) + "px";
}
const hideTip = () => { tip.style.display = "none"; };
const below = (node) => { const r = node.getBoundingClientRect(); return [r.left, r.bottom - 8]; };
X.tip = function (node, lines) {
  // A screen reader hears what the tip says; a keyboard user sees it on focus.
  node.setAttribute("aria-description", lines().filter(Boolean).join(". "));
  node.addEventListener("mouseenter", (ev) => showTip(lines(), ev.clientX, ev.clientY));
  node.addEventListener("mousemove", (ev) => showTip(lines(), ev.clientX, ev.clientY));
  node.addEventListener("mouseleave", hideTip);
  node.addEventListener("focus", () => showTip(lines(), ...below(node)));
  node.addEventListener("blur", hideTip);
};
// Words (written by Python on the first screen, or by heatText): their tip is in data-tip, one listener for all.
const wordOf = (ev) => (ev.target instanceof Element ? ev.target.closest(".w[data-tip]") : null);
document.addEventListener("mouseover", (ev) => { const w = wordOf(ev); if (w) showTip(w.dataset.tip.split("\n"), ev.clientX, ev.clientY); });
document.addEventListener("mouseout", (ev) => { if (wordOf(ev)) hideTip(); });
document.addEventListener("focusin", (ev) => { const w = wordOf(ev); if (w) showTip(w.dataset.tip.split("\n"), ...below(w)); });
document.addEventListener("focusout", (ev) => { if (wordOf(ev)) hideTip(); });
// A list of words is one tab stop: arrow keys move from word to word (each word's score is its label).
document.addEventListener("keydown", (ev) => {
  const list = ev.target instanceof Element ? ev.target.closest(".heat[role=list]") : null;
  if (!list || !["ArrowRight", "ArrowLeft", "ArrowDown", "ArrowUp", "Home", "End"].includes(ev.key)) return;
  const words = [...list.querySelectorAll(".w")].filter((w) => w.offsetParent !== null);
  if (!words.length) return;
  let k = words.indexOf(ev.target);
  if (ev.key === "Home") k = 0;
  else if (ev.key === "End") k = words.length - 1;
  else k = Math.max(0, Math.min(words.length - 1, k + (ev.key === "ArrowRight" || ev.key === "ArrowDown" ? 1 : k < 0 ? 0 : -1)));
  words[k].focus();
  ev.preventDefault();
});

// ---- a text heat map: words coloured by signed score / scale (the report's, or the input's own) ----
X.colour = function (node, v) {  // v: score / scale
  if (node.parentNode && node.parentNode.classList && node.parentNode.classList.contains("grey")) return;
  node.style.background = X.divColor(v);
  node.style.color = Math.abs(v) > 0.6 ? "#fff" : "";
};
X.heatText = function (features, scores, tokens, opts) {
  opts = opts || {};
  const m = opts.max || X.maxAbs(scores) || 1, units = opts.units || "score";
  const wrap = h("div", { class: "heat" + (opts.small ? " small" : "") + (opts.grey ? " grey" : ""), role: "list", tabindex: "0",
    "aria-label": (opts.what ? opts.what + ": " : "") + features.length + " words, arrow keys read each score" });
  const spans = features.map((f, i) => {
    const sign = scores[i] > 0 ? "+" : scores[i] < 0 ? "\u2212" : "";
    const lines = [f, units + ": " + X.fmt(scores[i], 4) + (opts.grey ? "   (weak evidence)" : ""),
      tokens && tokens[i] ? "tokens: " + tokens[i].join("  ") : "", opts.rank ? "rank " + opts.rank[i] + " of " + features.length : ""];
    const s = h("span", { class: "w", role: "listitem", tabindex: "-1", text: f, "data-tip": lines.filter(Boolean).join("\n"),
      "aria-label": (String(f).trim() || JSON.stringify(f)) + ": " + sign + X.fmt(Math.abs(scores[i]), 3) + " " + units + (opts.rank ? ", rank " + opts.rank[i] : "") });
    wrap.append(s, " ");
    return s;
  });
  // Repainted on another scale in place (the section's "colour scale" choice).
  wrap._paint = (scale) => { if (!opts.grey) spans.forEach((s, i) => X.colour(s, scores[i] / (scale || 1))); };
  wrap._scales = { report: m, own: opts.own || m };
  wrap._paint(m);
  return wrap;
};
// The colour bar of a card, in the method's own units: -max ... 0 ... +max (and the total change, where known).
X.scaleBar = function (max, units, note, total) {
  const bar = h("span", { class: "sb" });
  bar.style.background = "linear-gradient(to right, " + X.META.colorscale.map(([t, c]) => c + " " + (t * 100) + "%").join(", ") + ")";
  const lo = h("span", { class: "sb-n", text: "\u2212" + X.fmt(max, 3) }), hi = h("span", { class: "sb-n", text: "+" + X.fmt(max, 3) });
  const node = h("div", { class: "scale" }, [lo, bar, hi, h("span", { text: units + (note ? " \u00b7 " + note : "") }),
    total !== null && total !== undefined ? h("span", { class: "total", text: "total change f(x) \u2212 f(baseline) " + (total > 0 ? "+" : total < 0 ? "\u2212" : "") + X.fmt(Math.abs(total), 3) }) : null]);
  node._set = (m) => { lo.textContent = "\u2212" + X.fmt(m, 3); hi.textContent = "+" + X.fmt(m, 3); };
  return node;
};
X.ranks = function (scores) {
  const idx = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b), r = new Array(scores.length);
  idx.forEach((k, i) => { r[k] = i + 1; });
  return r;
};

// ---- plotly.js: embedded once as text, compiled off the main thread from a blob: URL ----
// Parsing 4.8 MB of plotly.js inline would block the page for seconds; text is not parsed, and a
// blob: script is compiled in the background while the index and heat maps are already usable.
function inject() {
  return new Promise((resolve, reject) => {
    if (window.Plotly) return resolve(window.Plotly);
    const el = document.getElementById("plotly-js");
    if (!el) return reject(new Error("plotly.js is missing: its shared file did not load"));
    plotlySource(el).then((src) => {
      const fallback = () => {  // blob: refused (e.g. a stricter host page): run it inline instead
        const t = document.createElement("script");
        t.text = src;
        document.head.append(t);
        window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js could not be started"));
      };
      let url;
      try { url = URL.createObjectURL(new Blob([src], { type: "text/javascript" })); } catch (err) { return fallback(); }
      const s = document.createElement("script");
      s.onload = () => { URL.revokeObjectURL(url); window.Plotly ? resolve(window.Plotly) : fallback(); };
      s.onerror = () => { URL.revokeObjectURL(url); fallback(); };
      s.src = url;
      document.head.append(s);
    }, reject);
  });
}
const loaded = document.readyState === "loading"
  ? new Promise((r) => document.addEventListener("DOMContentLoaded", r, { once: true })) : Promise.resolve();
let plotlyPromise = null;
X.loadPlotly = () => plotlyPromise || (plotlyPromise = loaded.then(inject));

// ---- rendering: a section's text is built early (the page's find and print see every word); its
// figures are drawn when it comes near the viewport, or when the page is printed ----
const building = [], figures = [];
X.whenDone = (p) => { building.push(p); return p; };
X.figure = (p) => {
  const q = Promise.resolve(p).catch((err) => { console.error(err); });
  figures.push(q);
  return q;
};
// Resolves when every figure asked for so far is drawn (tests and benchmarks wait on it).
X.settled = async function () {
  let n = -1;
  while (n !== building.length + figures.length) { n = building.length + figures.length; await Promise.all(building.concat(figures)); }
  return document.querySelectorAll(".js-plotly-plot").length;
};
// Draw figure jobs now, or keep them on their section while it is far from the viewport.
X.runJobs = function (jobs, node) {
  const sec = node && node.closest ? node.closest("section.input") : null;
  if (sec && sec._defer) {
    (sec._jobs = sec._jobs || []).push(...jobs);
    return Promise.resolve();
  }
  return X.figure(Promise.all(jobs.map((f) => f())));
};
// data-state: queued, loading, then "text" (its words built, its figures waiting for the viewport) or
// "done" (its figures drawn or under way: X.settled() waits for them), or "error".
function drawFigures(sec) {
  sec._defer = false;
  if (sec.dataset.state === "text") sec.dataset.state = "done";
  const jobs = sec._jobs || [];
  sec._jobs = [];
  return X.figure(Promise.all(jobs.map((f) => f())));
}
function renderSection(sec) {
  sec.dataset.state = "loading";
  const body = sec.querySelector(".body"), before = figures.length;
  return (async () => {
    try {
      const d = JSON.parse(document.getElementById("d" + sec.dataset.i).textContent);
      await X.buildInput(body, d);
      body.style.minHeight = "";
      sec.dataset.state = sec._defer ? "text" : "done";
    } catch (err) {
      sec.dataset.state = "error";
      body.textContent = "";
      body.append(h("p", { class: "error", text: "This section could not be drawn: " + err }));
      console.error(err);
    }
    return { figs: Promise.all(figures.slice(before)) };  // wrapped: not awaited with the text
  })();
}
// Sections near the viewport queue up; the nearest is drawn first, and once plotly runs, one
// section's figures are finished before the next starts (a jump to input 50 shows input 50 first).
const queue = new Set();
let pumping = null;
function distance(sec) {
  const r = sec.getBoundingClientRect();
  return r.bottom < 0 ? -r.bottom : r.top > innerHeight ? r.top - innerHeight : 0;
}
function pump() {
  if (pumping) return pumping;
  pumping = (async () => {
    while (queue.size) {
      let best = null;
      for (const s of queue) if (!best || distance(s) < distance(best)) best = s;
      queue.delete(best);
      const { figs } = await renderSection(best);
      if (window.Plotly) await figs;
    }
    pumping = null;
  })();
  return X.whenDone(pumping);
}
X.enqueue = function (sec) {
  sec._near = true;
  if (["text", "done", "error"].includes(sec.dataset.state)) return X.whenDone(drawFigures(sec));
  sec._defer = false;  // near the viewport: its figures with its text
  if (sec.dataset.state) return pumping;
  sec.dataset.state = "queued";
  queue.add(sec);
  return pump();
};
// Far sections: their text, one per idle moment, in page order, figures kept for later.
let background = null;
const idle = (f) => (window.requestIdleCallback ? requestIdleCallback(f, { timeout: 500 }) : setTimeout(f, 16));
X.buildText = function () {
  if (background) return background;
  background = (async () => {
    for (const sec of document.querySelectorAll("section.input[data-i]")) {
      if (sec.dataset.state || !document.getElementById("d" + sec.dataset.i)) continue;
      await new Promise((r) => idle(r));
      if (sec.dataset.state) continue;  // the reader got there first
      sec._defer = !sec._near;
      await renderSection(sec);
      // The reader reached it while its text was being built: its figures now, not when it next scrolls by.
      if (sec._near) X.whenDone(drawFigures(sec));
    }
  })();
  return background;
};
const lazyNodes = [];
const io = new IntersectionObserver((entries) => {
  for (const en of entries) if (en.isIntersecting) { io.unobserve(en.target); en.target._done = true; en.target._render(); }
}, { rootMargin: "300px 0px" });
X.lazy = function (node, render) { node._render = render; lazyNodes.push(node); io.observe(node); };
// Everything drawn: every section's text and figures, every figure still waiting (printing, saving as PDF).
X.printReady = async function () {
  await X.buildText();
  for (const sec of document.querySelectorAll("section.input[data-i]")) {
    if (sec._allTargets) await sec._allTargets();
    if (sec._defer || (sec._jobs && sec._jobs.length)) X.whenDone(drawFigures(sec));
  }
  for (const node of lazyNodes) if (!node._done) { node._done = true; io.unobserve(node); node._render(); }
  return X.settled();
};
X.ready = function () {
  // Two frames: the observer has reported what is visible at load; wait for those sections' text.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    Promise.all(building).then(() => {
      window.__explainReady = performance.now();
      document.body.dataset.ready = "1";
      X.buildText().then(() => { document.body.dataset.text = "1"; }, (err) => console.error(err));
    });
  }));
  X.loadPlotly().catch((err) => console.error(err));
};
})();
