"""Reports render from Results alone: every family, failures, escaping, one plotly.js, determinism.

Like shap's plot tests, the Results are built from random arrays (reports.samples): no model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import explain
from explain import reports
import report_samples as samples
from explain.metrics import agreement as metric_agreement
from explain.reports.compare import agreement
from explain.reports.encode import pack_exact, pack_quantized, script_json, unpack
from explain.reports.inline import explanation_html, results_html
from explain.reports.plotly_bundle import embedded_script

HOSTILE = samples.HOSTILE
DATA = re.compile(r'<script type="application/json" id="(d\d+|explain-meta)">(.*?)</script>', re.S)


def builders() -> dict[str, explain.Results]:
    return {"text": samples.text_results(4, targets=2), "lm": samples.lm_results(), "image": samples.image_results()}


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[explain.Results, str]]:
    """Each family's sample Results and its report HTML."""
    return {k: (r, reports.render(r)) for k, r in builders().items()}


def blobs(html: str) -> dict[str, object]:
    """Return the page's embedded JSON documents by element id."""
    return {k: json.loads(v) for k, v in DATA.findall(html)}


def without_plotly(html: str) -> str:
    return html.replace(embedded_script(), "")


def test_text_report_has_header_index_and_sections(rendered: dict) -> None:
    r, html = rendered["text"]
    for needle in ("sha256:0123456789abcdef", "94,979", "BertForSequenceClassification", "2026-01-02T03:04:05+00:00",
                   "2.13.0", "from cache", "Run details", 'id="index"', 'id="quality"'):
        assert needle in html, needle
    for rec in r.inputs:
        assert f'id="input-{rec.index}"' in html and f'href="#input-{rec.index}"' in html
    docs = blobs(html)
    d0 = docs["d0"]
    assert len(d0["groups"]) == 2  # two labels explained per input
    methods = [e["m"] for e in d0["groups"][0]["exps"]]
    assert methods == ["ig", "shap", "lime", "attention"]
    att = d0["groups"][0]["exps"][3]["att"]
    assert {"w", "wr", "t", "tr", "tokens"} <= set(att)
    assert unpack(att["w"]).shape == (2, 4, 12, 12)
    assert d0["groups"][0]["exps"][0]["ft"] is not None  # sub-word tokens for the hover
    assert len(d0["groups"][0]["cmp"]["pairs"]) == 6  # 4 methods: every pair compared


def test_quality_flags_and_figures(rendered: dict) -> None:
    r, html = rendered["text"]
    meta = blobs(html)["explain-meta"]
    assert [s["key"] for s in meta["quality"]] == ["ig", "shap", "lime"]
    ig = meta["quality"][0]
    assert ig["limit"] == 0.05 and any(ig["bad"]) and not all(ig["bad"])
    index = html[html.index('id="index"') : html.index('id="input-0"')]
    # input 0 was built with failing self-checks: IG incomplete (20 % off), SHAP unstable
    assert "Integrated Gradients: completeness failed" in index and "SHAP: stability failed" in index
    assert "IG is incomplete: the scores add up to the output change within 20.0%" in json.dumps(blobs(html)["d0"], ensure_ascii=False)
    assert "How far the summed attributions miss" in html and "efficiency gap" in html.lower() and "R²" in html


def test_failures_are_shown(rendered: dict) -> None:
    r, html = rendered["text"]
    assert 'class="failed"' in html
    assert "cannot tokenise &lt;img src=x onerror=alert(1)&gt;" in html
    assert "lime failed" in html and "surrogate did not converge" in html
    assert '<span class="pill fail"' in html  # the failed method in the index


def test_causal_lm_report_has_one_group_per_generated_token(rendered: dict) -> None:
    r, html = rendered["lm"]
    d0 = blobs(html)["d0"]
    tokens = [g for g in d0["groups"] if not g["whole"]]
    assert [g["t"]["pos"] for g in tokens] == [6, 7, 8, 9]
    assert d0["groups"][-1]["whole"] and d0["groups"][-1]["title"] == "whole continuation"
    assert all([e["m"] for e in g["exps"]] == ["ig", "attention"] for g in d0["groups"])
    assert '<span class="cont">' in html  # the continuation is marked in the prompt


def test_image_report_embeds_picture_and_pixel_maps(rendered: dict) -> None:
    r, html = rendered["image"]
    d0 = blobs(html)["d0"]
    assert d0["img"] == r.inputs[0].image_png
    e = d0["groups"][0]["exps"][0]
    assert e["g"] == "pixel" and e["full"] == [28, 28]
    shown = unpack(e["s"])
    exact = r.for_input(0)[0].scores
    assert shown.shape == exact.shape and np.allclose(shown, exact, atol=np.abs(exact).max() / 2000)
    assert "(28×28)" in html


@pytest.mark.parametrize("family", ["text", "lm", "image"])
def test_hostile_strings_never_appear_unescaped(rendered: dict, family: str) -> None:
    r, html = rendered[family]
    assert HOSTILE not in html
    page = without_plotly(html)
    assert not re.search(r'<img(?! alt="[^"<>]*" src="data:image/png;base64,)', page, re.I)  # only the page's own thumbnails
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
    for key, raw in DATA.findall(html):
        assert "<" not in raw and ">" not in raw  # neither </script> nor <!-- can occur in a data blob
    if family != "image":  # image inputs carry it only in their file name, which is server-rendered
        decoded = json.dumps(blobs(html), ensure_ascii=False)
        assert HOSTILE in decoded  # and the page receives it intact, to set as textContent


def test_inline_views_escape_hostile_strings() -> None:
    r = samples.text_results(2)
    one = explanation_html(r[0])
    assert HOSTILE not in one and "&lt;img src=x onerror=alert(1)&gt;" in one
    img = explanation_html(samples.image_results(1)[0])
    assert "data:image/png;base64," in img
    frame = results_html(r)
    assert frame.startswith("<iframe srcdoc=") and HOSTILE not in frame and "<script" not in frame


@pytest.mark.parametrize("family", ["text", "lm", "image"])
def test_plotly_embedded_once_and_nothing_remote(rendered: dict, family: str) -> None:
    r, html = rendered[family]
    assert html.count(embedded_script()) == 1 and html.count('id="plotly-js"') == 1
    page = without_plotly(html)
    # Server-drawn thumbnails are data: URIs; nothing else may name a source.
    assert not re.search(r"<(script|img|iframe|link|audio|video|source)[^>]*\s(src|href)\s*=\s*(?!\"data:image/png;base64,)", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # and the page forbids requests anyway


@pytest.mark.parametrize("family", ["text", "lm", "image"])
def test_rendering_is_deterministic_and_survives_the_results_file(rendered: dict, family: str, tmp_path: Path) -> None:
    r, html = rendered[family]
    assert reports.render(r) == html
    back = explain.open_results(explain.save(r, tmp_path / "results.json"))
    assert reports.render(back) == html


def test_write_report_writes_one_file_atomically(tmp_path: Path) -> None:
    r = samples.text_results(2)
    path = reports.write_report(r, tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html"
    assert path.read_text(encoding="utf-8") == reports.render(r)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert explain.report(r, str(tmp_path / "r2.html")) == str(tmp_path / "r2.html")


def test_render_rejects_what_is_not_results() -> None:
    with pytest.raises(TypeError, match="Results"):
        reports.render([1, 2])  # type: ignore[arg-type]


def test_packed_arrays_round_trip() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 5)).astype(np.float32)
    assert np.array_equal(unpack(pack_exact(a)), a)
    signed = rng.normal(size=(2, 4, 7, 7))
    signed[0, 0, 0, 0] = 0.0
    back = unpack(pack_quantized(signed))
    assert back[0, 0, 0, 0] == 0.0  # zero stays exactly zero
    assert np.abs(back - signed).max() <= np.abs(signed).max() / 2047
    positive = rng.random((9, 9))
    assert np.abs(unpack(pack_quantized(positive)) - positive).max() <= positive.max() / 4095


def test_script_json_cannot_close_its_script() -> None:
    doc = {"t": "</script><!-- & <b>", "n": float("nan")}
    text = script_json(doc)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": doc["t"], "n": None}


def test_report_agreement_is_the_metrics_definition() -> None:
    """The report's pairs are explain.metrics.agreement's figures (one definition), top-k over the top 20 %."""
    r = samples.text_results(2, hostile=False)
    exps = r.for_input(0)
    cmp = agreement(exps)
    assert cmp["rows"] == [0, 1, 2, 3] and len(cmp["pairs"]) == 6
    assert cmp["k"] == 3 and "top 3 of 12" in cmp["basis"]  # ceil(20 % of 12 words)
    for i, j, rho, top in cmp["pairs"]:
        ref = metric_agreement.pair_agreement(exps[i], exps[j])
        assert ref is not None and top == pytest.approx(ref["top_k"]) and rho == pytest.approx(ref["spearman"])
    # Two methods picking disjoint top features agree 0; the same ranking agrees 1.
    a = np.array([5.0, 4, 0, 0, 0])
    assert metric_agreement.top_k_overlap(a, a[::-1].copy(), 2) == 0.0
    assert metric_agreement.top_k_overlap(a, a * 2, 2) == 1.0


def test_hundred_inputs_stay_under_ten_megabytes() -> None:
    r = samples.text_results(100, 30, hostile=False)
    html = reports.render(r)
    assert len(html.encode("utf-8")) < 10_000_000
    assert html.count('<section class="input"') == 100
