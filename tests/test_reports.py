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
from explain.reports.inline import explanation_html
from explain.reports.show import results_html
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
    assert [s["key"] for s in meta["quality"]] == ["ig-completeness", "shap-stability", "lime-surrogate_fit", "lime-stability"]
    q = {s["key"]: s for s in meta["quality"]}
    # a point is red exactly where that explanation's self-check failed: input 0 was built with failing ones
    ig, shap = q["ig-completeness"], q["shap-stability"]
    assert ig["bad"] == [e.input == 0 for e in r.by_method("ig")] and ig["limit"] is None  # IG's tolerance is per input
    assert shap["bad"] == [e.input == 0 for e in r.by_method("shap")] and shap["limit"] == 0.75 and shap["y"][0] == 0.5
    assert sum(shap["bad"]) >= 1 and f"{sum(shap['bad'])} failed the stability check (below 0.75)" in shap["summary"]
    lime = q["lime-surrogate_fit"]
    assert lime["bad"] == [e.checks["score"] < 0.5 for e in r.by_method("lime")] and lime["limit"] == 0.5
    index = html[html.index('id="index"') : html.index('id="input-0"')]
    assert "Integrated Gradients: completeness failed" in index and "SHAP: stability failed" in index
    d0 = json.dumps(blobs(html)["d0"], ensure_ascii=False)
    assert "IG is NOT complete: the scores add up to" in d0 and "off by 20% of f(x) - f(baseline)" in d0
    assert "SHAP stability: the values at 500 and at 250 evaluations disagree on the top 1 feature (average overlap 0.50" in d0
    # SHAP's efficiency gap adds up by construction: never shown as a check anywhere
    assert "efficiency" not in html.lower() and "How far the summed attributions miss" in html and "R²" in html


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


# ---- issue 16: honest colour, the first screen, shared assets, the index ----

from explain.results.explanation import Explanation, SelfCheck, Target  # noqa: E402
from explain.reports import answer, evidence  # noqa: E402
from explain.reports.consensus import consensus  # noqa: E402


def _exp(method: str, scores: list[float], checks: dict | None = None, **kw: object) -> Explanation:
    return Explanation(method=method, family="text-classifier", input=0, target=Target(1, "positive", 0.9),
                       features=tuple(f"w{i}" for i in range(len(scores))), scores=np.asarray(scores, dtype=np.float32),
                       granularity="word", settings={"output": "probability", "baseline": "[PAD] tokens"}, checks=checks or {}, **kw)


def test_weak_evidence_is_judged_against_the_noise_floor_the_method_measured() -> None:
    # IG: its completeness gap is its floor; scores within twice of it are weak, above it they are evidence.
    quiet = _exp("ig", [1e-6, -2e-6], {"output_change": -1e-6, "convergence_delta": 1.5e-6})
    loud = _exp("ig", [1e-6, -2e-6], {"output_change": -1e-6, "convergence_delta": 0.5e-6})
    assert "Weak evidence: no word moves p(positive) by more than 2.0e-06" in str(evidence.weak_evidence(quiet))
    assert evidence.weak_evidence(loud) is None  # tiny, but far above what the method could not resolve: drawn pale, not grey
    assert "Weak evidence" in explanation_html(quiet) and "Weak evidence" not in explanation_html(loud)  # Jupyter view too
    # SHAP and LIME: the floor their second estimate measured (checks["noise_floor"]); none measured: no weak state.
    assert evidence.weak_evidence(_exp("shap", [0.01, -0.004], {"noise_floor": 0.006})) is not None
    assert evidence.weak_evidence(_exp("shap", [0.01, -0.004], {"noise_floor": 0.004})) is None
    assert evidence.weak_evidence(_exp("lime", [0.01, 0.0])) is None
    assert "No evidence: every score is 0" in str(evidence.weak_evidence(_exp("occlusion", [0.0, 0.0])))
    assert evidence.weak_evidence(_exp("attention", [0.0, 0.0])) is None  # relevance has no output units


def test_units_scale_cost_and_clean_tokens() -> None:
    ig, shap, att = _exp("ig", [0.2, -0.1]), _exp("shap", [0.05, 0.4]), _exp("attention", [3.0, 1.0])
    other = _exp("lime", [0.9, 0.0])  # another input's explanation: the report's scale is the largest of all
    report = evidence.report_scales([ig, shap, att, other])
    assert report == {"probability": pytest.approx(0.9)}  # attention has no output units: not on it
    scales = evidence.scale_groups([ig, shap, att], report)
    assert [s["units"] for s in scales] == ["contribution to p(positive)", "contribution to p(positive)", "relevance"]
    assert scales[0]["max"] == scales[1]["max"] == pytest.approx(0.9) and scales[0]["shared"]  # one scale per report
    assert scales[0]["own"] == scales[1]["own"] == pytest.approx(0.4)  # this input's, for the page's other choice
    assert scales[2]["max"] == pytest.approx(3.0) and not scales[2]["shared"]
    assert evidence.cost_text(_exp("lime", [0.1], seconds=0.5, rows=8, cached_rows=32)) == "0.5 s · 40 rows, 32 from cache"
    assert evidence.cost_text(_exp("lime", [0.1], rows=1)) == "0 s · 1 row"
    assert [evidence.clean_token(t) for t in ("Ġnight", "##ing", "▁the", "roar", "Ċ")] == [" night", "ing", " the", "roar", "\n"]


def test_consensus_and_probabilities() -> None:
    a, b = _exp("ig", [2.0, -1.0, 0.0], {"output_change": 1.0}), _exp("shap", [0.5, 0.5, -0.25], {"output": 0.8, "base_value": 0.05})
    c = consensus([a, b, _exp("attention", [9.0, 0.0, 0.0])])
    assert c is not None and c.sentence is None and [e.method for e in c.used] == ["ig", "shap"]  # attention has no output units
    # In the output's own units, not each method stretched to its own max: magnitudes stay comparable across inputs.
    assert c.values.tolist() == pytest.approx([(2.0 + 0.5) / 2, (-1.0 + 0.5) / 2, (0.0 - 0.25) / 2])
    assert c.units == "contribution to p(positive)" and c.top == pytest.approx(2.0) and c.total == pytest.approx((1.0 + 0.75) / 2)
    c = consensus([_exp("ig", [1e-7, 0.0], {"output_change": 1e-7, "convergence_delta": 1e-7})])
    assert c is not None and c.sentence is not None and "Weak evidence" in c.sentence
    assert answer.prob_text(0.99996) == "> 0.999" and answer.prob_text(0.5) == "0.500" and answer.prob_text(1e-5) == "< 0.001"
    r = samples.text_results(4, hostile=False)
    probs = answer.class_probabilities(r, r.inputs[0], r.for_input(0))
    assert len(probs) == 3 and sum(p for _, p in probs) == pytest.approx(1.0) and probs[0][0] == r.inputs[0].prediction.label


def test_first_screen_comes_before_the_run_details() -> None:
    r = samples.text_results(5, hostile=False)
    html = reports.render(r)
    assert html.index('id="answers"') < html.index('id="overview"') < html.index('id="index"')
    assert '<details id="overview"' in html  # run details fold away
    assert "accuracy <strong>4/5</strong>" in html  # input 1's true label differs
    cards = re.findall(r'<article class="([^"]*)" data-i="(\d)"', html)
    assert ("answer noev", "2") in cards or ("answer noev flagged", "2") in cards  # input 2 has no evidence
    assert "✗ wrong: true" in html
    assert "removing a feature means: mask (each token of a removed word becomes the mask token ([MASK])); SHAP removed words by drop" in html
    assert html.count('class="pb') >= 3 * 5 - 3  # every class per input


def test_flags_come_from_failed_self_checks() -> None:
    bad = _exp("lime", [0.3, 0.1], self_checks=(SelfCheck("surrogate_fit", False, 0.46, 0.5, "LIME's surrogate does not fit: R² = 0.46."),))
    good = _exp("lime", [0.3, 0.1], self_checks=(SelfCheck("surrogate_fit", True, 0.9, 0.5, "fits"),), checks={"score": 0.2})
    from explain.reports.quality import check_lines, flagged

    assert flagged(bad) == "LIME: surrogate fit failed" and flagged(good) is None
    lines = check_lines(bad)
    assert lines[0]["bad"] and lines[0]["label"] == "failed" and "R² = 0.46" in lines[0]["value"]


def test_shared_assets_write_plotly_once(tmp_path: Path) -> None:
    from explain.reports.plotly_bundle import ASSET_NAME

    a = reports.write_report(samples.text_results(2, hostile=False), tmp_path / "a.html", assets="shared")
    b = reports.write_report(samples.lm_results(hostile=False), tmp_path / "b.html", assets="shared")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.html", "b.html", ASSET_NAME])
    for page in (a, b):
        html = page.read_text(encoding="utf-8")
        assert f'<script src="{ASSET_NAME}"></script>' in html and 'id="plotly-js"' not in html and "'self'" in html
        assert len(html) < 300_000
    with pytest.raises(ValueError, match="assets must be one of"):
        reports.write_report(samples.text_results(2), tmp_path / "c.html", assets="cdn")


def test_index_and_show(tmp_path: Path) -> None:
    text = samples.text_results(4, hostile=False)
    path = reports.write_index([{"title": "sentiment", "href": "s/report.html", "results": text},
                                reports.index.IndexEntry("no results", "x.html", note="not run")], tmp_path / "index.html")
    html = path.read_text(encoding="utf-8")
    assert 'href="s/report.html"' in html and "accuracy 3/4" in html and "explanations flagged unreliable" in html
    assert "<script" not in html and "not run" in html
    assert reports.show(text[0], display=False).startswith("<div")
    assert "<iframe srcdoc=" in reports.show(text, display=False)
    with pytest.raises(TypeError, match="show takes Results or an Explanation"):
        reports.show([1, 2], display=False)  # type: ignore[arg-type]


# ---- self-checks, removals, true labels, old files ----


def test_old_results_without_verdicts_judge_ig_only() -> None:
    # Results written before self_checks: IG's completeness is judged from its delta; SHAP's efficiency gap is
    # accounting that holds by construction, so even a large one flags nothing; LIME's R² is a figure without a verdict.
    from explain.reports.quality import check_lines, flagged

    ig = _exp("ig", [0.3, 0.1], {"convergence_delta": 0.08, "delta_relative": 0.2, "output_change": 0.4})
    shap = _exp("shap", [0.3, 0.1], {"base_value": 0.1, "output": 0.9, "efficiency_gap": 0.5})
    lime = _exp("lime", [0.3, 0.1], {"score": 0.2})
    assert flagged(ig) == "Integrated Gradients: completeness failed" and flagged(shap) is None and flagged(lime) is None
    assert check_lines(shap) == []
    assert [(c["label"], c["bad"]) for c in check_lines(lime)] == [("figure", False)] and "R² = 0.2" in check_lines(lime)[0]["value"]
    assert flagged(ig.replace(checks={**ig.checks, "delta_relative": 0.01})) is None


def test_every_failed_self_check_is_flagged_in_the_run_line_and_index() -> None:
    r = samples.text_results(4, hostile=False)
    failed = sum(1 for e in r if any(not c.passed for c in e.self_checks))
    assert failed >= 2  # IG and SHAP on input 0, and LIME wherever its R² is below 0.5
    html = reports.render(r)
    assert f"{failed} of {len(r):,} explanations flagged unreliable" in html
    # one more failed check (a LIME stability verdict) is one more flagged explanation
    e = next(e for e in r if e.method == "lime" and all(c.passed for c in e.self_checks))
    broken = e.replace(self_checks=tuple(c if c.name != "stability" else c.__class__("stability", False, 0.5, 0.75, "disagree")
                                         for c in e.self_checks))
    r2 = explain.Results([broken if x is e else x for x in r], model=r.model, inputs=r.inputs, failures=r.failures, run=r.run)
    html2 = reports.render(r2)
    assert f"{failed + 1} of {len(r):,} explanations flagged unreliable" in html2 and "LIME: stability failed" in html2


def test_each_method_that_removed_another_way_is_named() -> None:
    r = samples.text_results(3, hostile=False)
    # LIME recorded its removal under the old settings name `mask`: read it like `baseline`
    moved = [e.replace(settings={"mask": "unk", "output": "probability"}) if e.method == "lime" else e for e in r]
    r = explain.Results(moved, model=r.model, inputs=r.inputs, failures=r.failures, run=r.run)
    html = reports.render(r)
    line = re.search(r'<span class="removal">(.*?)</span>', html).group(1)
    assert line.startswith("removing a feature means: mask (each token of a removed word becomes the mask token ([MASK]))")
    assert "SHAP removed words by drop (removed words are deleted: the text is shorter) instead" in line
    assert "LIME removed words by unk (each token of a removed word becomes the unknown token ([UNK])) instead" in line
    assert "Integrated Gradients removed" not in line and "Attention" not in line  # IG used the run's; attention removes nothing
    assert blobs(html)["d0"]["baseline"].startswith("Removing a word means mask (")
    # the faithfulness metrics' own removals, as evaluate() records them
    scored = samples.with_metrics(r)
    metrics = {**scored.run["metrics"], "settings": {**scored.run["metrics"]["settings"], "removal": "drop", "removals": ["drop", "mask"]}}
    html = reports.render(explain.Results(list(scored), model=r.model, inputs=r.inputs, failures=r.failures, run={**scored.run, "metrics": metrics}))
    trust = html[html.index('id="trust"'):html.index('id="quality"')]
    assert ("The faithfulness figures removed words by drop (removed words are deleted: the text is shorter) "
            "(the plain figures; also mask, as figure@removal).") in trust


def test_true_labels_and_probabilities_come_from_the_input_records() -> None:
    new = samples.text_results(5, hostile=False)
    old = samples.text_results(5, hostile=False, labels_in_run=True)  # files written before InputRecord had them
    assert new.inputs[1].label is not None and "labels" not in new.run and old.inputs[1].label is None
    for r in (new, old):
        html = reports.render(r)
        assert "accuracy <strong>4/5</strong>" in html and html.count("✗ wrong: true") == 1
        probs = answer.class_probabilities(r, r.inputs[0], r.for_input(0))
        assert [p for _, p in probs] == sorted(new.inputs[0].probabilities, reverse=True) and len(probs) == 3
    # a record's own values win over the run's
    r = explain.Results(list(old), model=old.model, inputs=[x.__class__(**{**x.__dict__, "label": "neutral"}) for x in old.inputs],
                        failures=old.failures, run=old.run)
    assert answer.true_label(r, r.inputs[0]) == "neutral"


def test_a_schema_1_results_file_still_opens_and_renders(tmp_path: Path) -> None:
    # Schema 1: metrics lived in `checks`, no self_checks / metrics / cached_rows, no true label or probabilities on inputs.
    r = samples.with_metrics(samples.text_results(3, hostile=False))
    doc = json.loads(explain.results.results_io.dumps(r))
    doc["schema"] = "explain.results/1"
    labels, probs = {}, {}
    for d in doc["inputs"]:
        labels[str(d["index"])], probs[str(d["index"])] = d.pop("label"), d.pop("probabilities")
    doc["run"].update(labels=labels, probabilities=probs)
    for e in doc["explanations"]:
        e["checks"].update(e.pop("metrics"))
        e.pop("self_checks")
        e["cost"].pop("cached_rows")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    old = explain.open_results(path)
    assert all(not e.self_checks and e.cached_rows == 0 for e in old) and "deletion_auc" in old[0].metrics
    html = reports.render(old)
    assert 'id="trust"' in html and "accuracy <strong>2/3</strong>" in html
    assert html.count("Integrated Gradients: completeness failed") >= 1  # input 0's IG misses by 20%: judged from its delta
    assert "SHAP: stability failed" not in html and "efficiency" not in html.lower()  # no verdict recorded, none invented
    d0 = blobs(html)["d0"]
    ig = next(x for x in d0["groups"][0]["trust"]["rows"] if x["m"] == "ig")
    assert ig["faith"] and ig["self"][0]["key"] == "completeness" and ig["self"][0]["ok"] is False
    assert sum(1 for _ in re.finditer(r'class="pb', html)) >= 3 * 2  # every class's bar, from the run's probabilities


def test_a_failed_evidence_check_is_a_grey_card_not_an_unreliable_flag() -> None:
    """The methods' 'evidence' self-check (nothing moves the output): drawn as no evidence, never flagged unreliable."""
    from explain.reports.quality import check_lines, checks_sentence, flagged

    none = _exp("ig", [1e-4, -2e-4], {"output_change": 1e-4, "convergence_delta": 1e-9}, self_checks=(
        SelfCheck("evidence", False, 3e-4, 1e-3, "no evidence: the scores add up to 0.0003 in absolute value (below 0.001)"),
        SelfCheck("completeness", True, 1e-9, 1e-4, "IG is complete")))
    assert evidence.weak_evidence(none) == "No evidence: The scores add up to 0.0003 in absolute value (below 0.001)."
    assert flagged(none) is None  # not unreliable: there is nothing to rely on
    assert check_lines(none)[0]["label"] == "no evidence" and not check_lines(none)[0]["bad"]
    assert "IG evidence ✗" in checks_sentence([none])
    some = none.replace(self_checks=(SelfCheck("evidence", True, 0.5, 1e-3, "the scores add up to 0.5"),))
    assert evidence.weak_evidence(some) is None and "evidence" not in checks_sentence([some])
