"""The across-inputs view of big runs: per-class words or maps, histograms, slowest inputs, a bounded sample.

Built from hand-made Results with a planted cause ('great' decides positive, 'awful' negative).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import explain
from explain import reports
from explain.results.explanation import Explanation, InputRecord, ModelInfo, Results, Target
from explain.reports import dataset
import report_samples as samples
from explain.reports.encode import unpack

DATA = re.compile(r'<script type="application/json" id="(d\d+|explain-meta)">(.*?)</script>', re.S)
MAX_BYTES = 10_000_000  # the report budget of the size issue


@pytest.fixture(scope="module")
def big() -> tuple[Results, str]:
    r = samples.planted_text_results(1000)
    return r, reports.render(r)


def meta(html: str) -> dict:
    return json.loads(dict(DATA.findall(html))["explain-meta"])


def sections(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<section class="input" id="input-(\d+)"', html)]


def test_sample_is_deterministic_bounded_and_keeps_what_matters() -> None:
    r = samples.planted_text_results(1000)
    shown = dataset.sample(r, 100)
    assert shown is not None and len(shown) == 100 and shown == dataset.sample(r, 100)
    assert list(shown) == sorted(shown)  # in input order
    assert all(shown[i] == "first" for i in range(25))
    failed = {f.input for f in r.failures}
    assert 500 in shown and shown[500] == "failed"
    assert 1 < len(failed) < 25 and failed <= set(shown)  # every failure, up to a quarter of the sample
    assert shown[7] == "first" and dataset.sample(r, 100, seed=1) != shown  # the seed picks the random part
    assert dataset.sample(r, 1000) is None and dataset.sample(r, None) is None
    slow = dataset.sample(samples.planted_text_results(300, seed=9), 20)
    assert slow is not None and slow.get(7) in ("first", "slowest")


def test_aggregate_finds_the_planted_word_per_class() -> None:
    r = samples.planted_text_results(400)
    agg = dataset.aggregate(r)
    assert agg["kind"] == "words"
    by_label = {c["label"]: c for c in agg["classes"]}
    assert set(by_label) == {"negative", "positive"}
    for label, cue in (("positive", "great"), ("negative", "awful")):
        c = by_label[label]
        assert c["inputs"] == sum(1 for e in r.by_method("ig") if e.target.label == label)
        for m in c["methods"]:
            word, share, count, mean, sign = m["share"][0]
            assert word == cue and sign == 1.0 and count == m["n"] and share > 0.3
            assert m["mean"][0][0] == cue
            assert abs(sum(w[1] for w in m["share"]) - 1) < 0.35  # shares of the shown words: most of the total


def test_top_words_shares_are_exact() -> None:
    t = Target(0, "x", 1.0)
    e1 = Explanation("ig", "text-classifier", 0, t, ("A", "b", "c"), np.array([3.0, -1.0, 0.0], np.float32), "word")
    e2 = Explanation("ig", "text-classifier", 1, t, ("a", "d"), np.array([1.0, 1.0], np.float32), "word")
    words = {w[0]: w for w in dataset.top_words([e1, e2], min_count=1)["share"]}
    assert words["a"][1] == pytest.approx((0.75 + 0.5) / 2) and words["a"][2] == 2  # case folded
    assert words["b"][1] == pytest.approx(0.125) and words["b"][4] == pytest.approx(-1 / 3, abs=1e-4)
    assert words["d"][3] == pytest.approx(0.5)


def test_image_class_maps_share_one_grid_and_keep_the_planted_region() -> None:
    rng = np.random.default_rng(0)
    exps, inputs = [], []
    for i, (h, w) in enumerate([(40, 40), (40, 40), (80, 80), (20, 30)]):
        a = rng.random((h, w)) * 0.1
        a[: h // 4, : w // 4] = 1.0  # top-left quarter, whatever the size
        t = Target(3, "cat", 0.9)
        inputs.append(InputRecord(i, "image", path=f"{i}.png", width=w, height=h, prediction=t))
        exps.append(Explanation("gradcam", "image-classifier", i, t, (), a.astype(np.float32), "pixel"))
    r = Results(exps, model=ModelInfo("image-classifier", "cnn", "h", 1, ("cat",) * 4), inputs=inputs)
    agg = dataset.aggregate(r)
    assert agg["kind"] == "maps" and agg["shape"] == [40, 40]  # the commonest shape
    m = unpack(agg["classes"][0]["methods"][0]["map"])
    assert m.shape == (40, 40) and agg["classes"][0]["methods"][0]["n"] == 4
    assert m[:8, :8].mean() > 0.8 and m[20:, 20:].mean() < 0.15
    assert dataset.resize(np.ones((7, 9)), (3, 4)).shape == (3, 4)


def test_histograms_count_every_value() -> None:
    r = samples.with_metrics(samples.text_results(30, hostile=False))
    dists = {d["key"]: d for d in dataset.metric_distributions(r)}
    assert {"deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency", "sanity_rank_corr", "agreement_spearman"} <= set(dists)
    d = dists["deletion_auc"]
    assert [t["m"] for t in d["traces"]] == ["ig", "shap", "lime", "attention"]
    assert all(sum(t["counts"]) == t["n"] == 30 for t in d["traces"])
    assert d["random"] == pytest.approx(np.mean([e.metrics["deletion_auc_random"] for e in r]))
    assert d["edges"][0] <= d["random"] <= d["edges"][-1]
    selfs = {d["key"]: d for d in dataset.self_distributions(r)}
    assert set(selfs) == {"ig-completeness", "shap-stability", "lime-surrogate_fit", "lime-stability"}  # no SHAP efficiency gap
    assert selfs["ig-completeness"]["log"] and selfs["ig-completeness"]["limit"] is None  # IG's tolerance differs per input
    assert selfs["shap-stability"]["limit"] == 0.75 and selfs["lime-surrogate_fit"]["limit"] == 0.5 and not selfs["lime-stability"]["log"]
    assert sum(selfs["ig-completeness"]["traces"][0]["counts"]) == 30


def test_big_run_report_shows_a_sample_with_a_note_and_stays_small(big: tuple[Results, str]) -> None:
    r, html = big
    shown = sections(html)
    assert len(shown) == 100 and shown == list(dataset.sample(r, 100))
    assert 'id="dataset"' in html and 'id="sample-note"' in html
    assert "Showing 100 of 1,000 inputs" in html and "results.json" in html and "shards folder" in html
    index = html[html.index('<section id="index"'):html.index('<section class="input"')]
    assert index.count('<tr><td class="num"><a href="#input-') + index.count('<tr class="failed">') == 100  # shown inputs only
    assert "showing 100 of 1,000 inputs" in html
    m = meta(html)
    assert m["quality"] == [] and {q["key"] for q in m["qhist"]} == {"ig-completeness", "shap-stability", "lime-surrogate_fit", "lime-stability"}  # histograms, not 3000 points
    assert m["dataset"]["agg"]["classes"][0]["methods"][0]["share"][0][0] in ("great", "awful")
    assert len(html.encode("utf-8")) < 6_500_000  # plotly.js (~4.8 MB) + 100 sections + the view


def test_slowest_inputs_table(big: tuple[Results, str]) -> None:
    r, html = big
    slow = html[html.index("Slowest inputs"):]
    first = re.search(r'<tbody><tr><td class="num">(.*?)</td>', slow).group(1)
    assert first == '<a href="#input-7">7</a>'  # input 7 was made slowest, and has a section
    top = dataset.slowest(r, None)
    assert top[0]["i"] == 7 and top[0]["seconds"] == pytest.approx(15.0) and len(top) == dataset.SLOWEST
    assert [s for _, s in top[0]["methods"]] == [5.0, 5.0, 5.0]


def test_size_stays_bounded_for_long_texts_with_attention() -> None:
    r = samples.text_results(1000, 30, hostile=False)
    html = reports.render(r)
    assert len(html.encode("utf-8")) < MAX_BYTES
    assert len(sections(html)) == 100


def test_max_inputs_none_shows_everything_and_small_runs_look_as_before(tmp_path: Path) -> None:
    r = samples.planted_text_results(150)
    full = reports.render(r, max_inputs=None)
    assert len(sections(full)) == 150 and 'id="sample-note"' not in full
    assert 'id="dataset"' in full and meta(full)["quality"]  # 150 inputs: across-inputs view and the per-input scatter
    small = reports.render(samples.text_results(5))
    assert 'id="dataset"' not in small and "dataset" not in meta(small) and 'href="#dataset"' not in small
    path = reports.write_report(r, tmp_path / "r.html", max_inputs=20)
    assert len(sections(path.read_text(encoding="utf-8"))) == 20
    with pytest.raises(ValueError, match="max_inputs"):
        reports.render(r, max_inputs=0)


def test_sampled_report_is_deterministic_and_survives_the_results_file(tmp_path: Path) -> None:
    r = samples.with_metrics(samples.planted_text_results(120))
    html = reports.render(r, max_inputs=30)
    back = explain.open_results(explain.save(r, tmp_path / "results.json"))
    assert reports.render(back, max_inputs=30) == html
    assert 'id="trust"' in html and len(sections(html)) == 30


def test_the_cli_report_command_takes_max_inputs(tmp_path: Path) -> None:
    from conftest import run_cli
    from report_samples import planted_text_results

    saved = explain.save(planted_text_results(30), tmp_path / "results.json")
    for flag, shown in (("5", 5), ("0", 30)):
        out = tmp_path / f"r{flag}.html"
        proc = run_cli("report", str(saved), "--out", str(out), "--max-inputs", flag)
        assert proc.returncode == 0, proc.stderr
        html = out.read_text(encoding="utf-8")
        assert len(sections(html)) == shown
        assert ("Showing 5 of 30 inputs" in html) == (shown == 5)
    bad = run_cli("report", str(saved), "--out", str(tmp_path / "x.html"), "--max-inputs", "-1")
    assert bad.returncode == 2 and "--max-inputs" in bad.stderr and "Traceback" not in bad.stderr


def test_log_histograms_count_zeros_instead_of_drawing_them() -> None:
    d = dataset._dist("shap", "SHAP gap", "", {"shap": [0.0, 0.0, 1e-3, 1e-5]}, log=True, limit=1e-3)
    assert d["zeros"] == 2 and sum(d["traces"][0]["counts"]) == 2  # only the two positive values are binned
    assert d["edges"][0] == pytest.approx(1e-5)  # the axis starts at the smallest real value, not at a floor
    allzero = dataset._dist("shap", "SHAP gap", "", {"shap": [0.0, 0.0]}, log=True)
    assert allzero["zeros"] == 2 and allzero["traces"] == []
