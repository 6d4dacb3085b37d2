"""The report's image view of vision transformers: patch grid lines, rollout, every head's map; rendered from results only.

Results of a tiny DeiT (class + distillation tokens) and a mean-pooled hand-written ViT (no
special token) are rendered; the figures' data must be the extras (to the page's 12-bit
packing), the grid lines must sit on the patch boundaries at the image's resolution, the
report must be the same from the reopened results file, and in Chromium the attention card must
draw its three figures with no console error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import explain
from explain.reports import data as report_data
from explain.reports.encode import unpack

from vit_models import adapter, image

H, W = image().shape[:2]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return {kind: explain.explain(adapter(kind), [image()], methods=["attention", "gradcam", "ig"], ig={"n_steps": 8, "adaptive": False})
            for kind in ("deit", "own-mean")}


@pytest.mark.parametrize("kind", ["deit", "own-mean"])
def test_patch_grid_lines_sit_on_the_patch_boundaries(results: dict[str, Any], kind: str) -> None:
    for e in results[kind]:
        doc = report_data.explanation_doc(e)
        if e.method == "ig":
            assert "vit" not in doc
            continue
        rows, cols = (e.extras["grid"] if e.method == "attention" else e.extras["layer_map_size"])
        shapes = doc["vit"]["lay"]["shapes"]
        xs = sorted(s["x0"] for s in shapes if s["x0"] == s["x1"])
        ys = sorted(s["y0"] for s in shapes if s["y0"] == s["y1"])
        assert xs == pytest.approx([c * W / cols - 0.5 for c in range(1, cols)])
        assert ys == pytest.approx([r * H / rows - 0.5 for r in range(1, rows)])
        note = doc["vit"]["note"]
        assert f"{rows}×{cols} patches" in note and e.extras["answer_rule"] in note
        assert ("dropped" in note) == (kind == "deit")


@pytest.mark.parametrize("kind", ["deit", "own-mean"])
def test_figures_hold_the_extras(results: dict[str, Any], kind: str) -> None:
    [e] = results[kind].by_method("attention")
    figs = report_data.explanation_doc(e)["vit"]["figs"]
    rollout, heads = figs
    [heat] = [t for t in rollout["data"] if t["type"] == "heatmap"]
    roll = e.extras["patch_rollout"]
    np.testing.assert_allclose(unpack(heat["zp"]), roll, atol=float(np.abs(roll).max()) / 4000)
    att = e.extras["patch_attention"]
    tiles = np.concatenate([att, att.mean(1, keepdims=True)], 1)
    np.testing.assert_allclose(unpack(heads["data"][0]["zp"]), tiles, atol=float(tiles.max()) / 4000)
    assert heads["layout"]["xaxis"]["ticktext"][-1] == "mean" and len(heads["layout"]["yaxis"]["ticktext"]) == att.shape[0]
    if kind == "own-mean":
        assert "mean over patch queries" in heads["note"]


def test_the_report_renders_the_same_from_the_results_file(results: dict[str, Any], tmp_path: Path) -> None:
    from explain.reports import render

    explain.save(results["deit"], tmp_path / "results.json")
    again = explain.open_results(tmp_path / "results.json")
    assert render(again) == render(results["deit"])


@pytest.mark.browser
def test_chromium_draws_the_attention_cards_figures(results: dict[str, Any], tmp_path: Path) -> None:
    from test_report_browser import ARGS, CHROMIUM, open_report, settle
    from playwright import sync_api

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    path = explain.report(results["deit"], str(tmp_path / "report.html"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, watch = open_report(browser, Path(path))
            page.evaluate("document.querySelector('#input-0').scrollIntoView()")
            settle(page)
            counts = page.evaluate("""() => [...document.querySelectorAll('.card.method')].map((c) => [c.dataset.method,
                c.querySelectorAll('.js-plotly-plot').length,
                (c.querySelector('.img-fig.js-plotly-plot') || {layout: {shapes: []}}).layout.shapes.length])""")
            watch.check()
        finally:
            browser.close()
    by_method = {m: (figs, lines) for m, figs, lines in counts}
    assert by_method["attention"] == (3, 6)  # overlay, rollout, every head; 3 + 3 lines on a 4 x 4 grid
    assert by_method["gradcam"] == (1, 6) and by_method["ig"] == (1, 0)
