/* The page's side of vision transformers' image views (reports/image_attention.py builds the figures):
 * each is drawn with X.plot; a trace's packed "zp" becomes its z (a 4-D array as tiles, one empty
 * cell between them); an "input" image source is the input's PNG. Text reaches the DOM through
 * textContent only. */
(function () {
"use strict";
const X = window.__explain, h = X.h;
async function traces(d, f) {
  const out = [];
  for (const t of f.data) {
    if (t.type === "image") { if (d.img) out.push(Object.assign({}, t, { source: "data:image/png;base64," + d.img })); continue; }
    if (!t.zp) { out.push(t); continue; }
    const a = await X.unpack(t.zp), s = a.shape, [L, H, r, c] = s.length === 4 ? s : [1, 1, s[0], s[1]], z = [];
    for (let l = 0; l < L; l++) for (let i = 0; i < r; i++) {
      const row = [];
      for (let k = 0; k < H; k++) { if (k) row.push(null); for (let j = 0; j < c; j++) row.push(a[((l * H + k) * r + i) * c + j]); }
      z.push(row);
      if (i === r - 1 && l < L - 1) z.push(row.map(() => null));
    }
    const u = Object.assign({}, t, { z });
    delete u.zp; delete u.tiles;
    out.push(u);
  }
  return out;
}
X.vitViews = function (d, e, card, jobs) {
  card.append(h("div", { class: "note vit-note", text: e.vit.note }));
  for (const f of e.vit.figs) {
    const div = h("div", { class: "fig vit-fig" });
    card.append(div, h("div", { class: "note", text: f.note }));
    jobs.push(async () => X.plot(div, await traces(d, f), f.layout, { displayModeBar: false }));
  }
};
})();
