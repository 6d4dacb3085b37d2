"""The benchmarks run in reduced size in CI: their tables print and their JSON is well-formed."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import MODELS, ROOT


@pytest.mark.slow
@pytest.mark.parametrize("script", ["speed.py", "memory.py", "scaling.py", "realsize.py", "quality_per_row.py", "gpu_check.py", "vit_pointing.py"])
def test_benchmark_quick_run(script: str, tmp_path: Path) -> None:
    if not (MODELS / "sentiment-bert").exists():
        pytest.skip("bundled models missing")
    out = tmp_path / "out.json"
    flag = "--dry-run" if script == "gpu_check.py" else "--quick"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), flag, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    if script == "speed.py":
        check_speed(doc)
        assert doc["schema"] == 2 and {r["method"] for r in doc["rows"]} == {"ig", "shap", "lime"}  # SHAP's checks run too
        assert "whole ours" in proc.stdout and "gain whole" in proc.stdout and doc["machine"]["date"]
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from speed_tables import render

        assert "not measured alike" not in render(doc)  # every column of the page filled from a schema-2 file
    elif script == "scaling.py":
        tables = {r["table"] for r in doc["rows"]}
        assert tables == {"length", "inputs", "generated", "memory"}
        assert all(r["seconds"] > 0 for r in doc["rows"])
        capped = [r for r in doc["rows"] if r["table"] == "memory"]
        assert len(capped) == 2 and all(r["rc"] == 0 for r in capped)
        assert "rows/token" in proc.stdout
    elif script == "realsize.py":
        for r in doc["rows"]:
            assert "error" not in r, r
            assert r["sec_per_input"] > 0 and r["peak_mb"] >= r["built_rss_mb"] > 0
            if r["method"] == "ig":  # counted by the runner: every step plus f(input) and f(baseline)
                assert r["rows_per_input"] >= doc["ig_settings"]["n_steps"]
    elif script == "quality_per_row.py":
        rows = doc["rows"]
        names = ("planted-cues-long", "planted-cues-short", "sentiment-bert", "planted-gpt2", "digits-cnn")
        assert {(r["case"], r["method"]) for r in rows} == {(c, m) for c in names for m in ("shap", "lime")}
        for r in rows:
            assert all(0 <= r[k]["min"] <= r[k]["mean"] <= r[k]["max"] <= 1 for k in ("top1", "top3", "sign")), r
            assert len(r["rows_per_input"]) == r["inputs"] == 3 and r["rows"]["mean"] > 0
            if r["rule"].startswith("adaptive"):  # rows the model ran never exceed the budget the values came from
                assert all(0 < rows_ <= used for rows_, used in zip(r["rows_per_input"], r["budget_used"]))
                assert set(r["stopped"]) <= {"settled", "exact", "cap"}
            else:
                assert set(r["stopped"]) == {"fixed"}
        assert len(doc["targets"]) == 2 * len({(r["case"], r["method"]) for r in rows})
    elif script == "gpu_check.py":
        rows = doc["rows"]
        assert doc["dry_run"] and {r["side"] for r in rows} == {"explain", "captum", "shap", "lime"}
        # on CPU autocast is a no-op: bf16 must agree with fp32 exactly, or the comparison is broken
        bf16 = [r for r in rows if r["precision"] == "bf16"]
        assert len(bf16) == 6 and all(r["topk_vs_fp32"] == 1.0 and r["cosine_vs_fp32"] == pytest.approx(1.0) for r in bf16)
    elif script == "vit_pointing.py":
        [run] = doc["runs"]
        assert run["images"] == 10 and all(0 <= v <= 1 for v in run["hit_rate"].values())
        assert all(m["accuracy"] >= 0.9 for m in run["models"].values()) and "rollout" in proc.stdout
    else:
        assert doc["inputs"] == 200 and len(doc["samples"]) >= 3


def check_speed(doc: dict) -> None:
    """Equal work on both sides, counts measured (not typed in), every summary recomputed from the stored runs."""
    schema = doc.get("schema", 1)
    for r in doc["rows"]:
        n = r["inputs"]
        # the direct side was handed exactly the per-input work ours did, over the same features
        assert r["work_direct"] == r["work_ours"] and len(r["work_ours"]) == n
        assert r["features_direct"] == r["features_ours"]
        # rows are counted at the model's forward on both sides (each input's prediction row included)
        key = {"ig": "n_steps", "lime": "num_samples", "shap": "max_evals"}[r["method"]]
        asked = sum(w[key] for w in r["work_ours"])
        if r["method"] == "shap":
            # max_evals is a cap, not the work done: shap's Partition explainer stops when its tree is
            # exhausted. So both sides stay within the cap plus one prediction row per input, and ours,
            # running shap's own algorithm (repeated masks evaluated once), evaluates no more than direct
            assert n < r["rows_direct"] <= asked + n and 0 < r["rows_ours"] <= asked + n
            assert r["rows_ours"] <= r["rows_direct"] + n
        else:  # IG: one gradient row per step; LIME: one per sample, less what our cache answered
            assert r["rows_direct"] >= asked and r["rows_ours"] > 0
        assert r["rows_per_input_direct"] == pytest.approx(r["rows_direct"] / n)
        # two independent counts of ours (the hook in the warm run, the results of the CLI run)
        # differ by at most the one prediction row per input
        assert abs(r["rows_ours"] - r["rows_ours_results"]) <= n
        assert r["t_over_fwd_direct"] == pytest.approx(r["warm_s_direct"] / r["fwd_s_direct"])
        assert len(r["runs"]["whole_s_ours"]) == len(r["runs"]["whole_s_direct"]) == doc["repeats"] == r["repeats"]
        assert r["peak_mb_ours"] >= r["load_rss_mb_ours"] > 0 and r["peak_mb_direct"] >= r["load_rss_mb_direct"] > 0
        assert 0 <= r["top_agreement"] <= 1
        if schema >= 2:
            _check_spans(r, doc)
        else:  # schema 1: ratios of medians; its compute spans differ (the direct side's held the library import)
            assert r["whole_ratio"] == pytest.approx(r["whole_s_ours"] / r["whole_s_direct"])
            assert r["warm_ratio"] == pytest.approx(r["warm_s_ours"] / r["warm_s_direct"])
            assert r["fixed_s_ours"] == pytest.approx(r["whole_s_ours"] - r["compute_s_ours"])
            assert r["whole_s_ours"] == pytest.approx(statistics.median(r["runs"]["whole_s_ours"]))
            assert 0 < r["compute_s_ours"] < r["whole_s_ours"] and 0 < r["compute_s_direct"] < r["whole_s_direct"]


def _check_spans(r: dict, doc: dict) -> None:
    """Schema 2: the same spans on both sides, each ratio the median of the repeats' own ratios with
    its spread, the gain's parts adding up, first-call costs and the verdict from the stored runs."""
    runs = r["runs"]
    for key, values in runs.items():
        assert r[key] == pytest.approx(statistics.median(values)), key
    assert len(runs["warm_s_ours"]) == len(runs["warm_s_direct"]) == doc["warm_repeats"] == r["warm_repeats"] >= 1
    for span in ("whole", "compute", "warm"):
        paired = [a / b for a, b in zip(runs[f"{span}_s_ours"], runs[f"{span}_s_direct"])]
        assert r[f"{span}_ratio"] == pytest.approx(statistics.median(paired)), span
        assert r["spread"][f"{span}_ratio"] == pytest.approx([min(paired), statistics.median(paired), max(paired)]), span
    for side in ("ours", "direct"):
        assert 0 < r[f"compute_s_{side}"] < r[f"whole_s_{side}"] and r[f"import_s_{side}"] >= 0
        assert r[f"rest_s_{side}"] == pytest.approx(r[f"whole_s_{side}"] - r[f"compute_s_{side}"] - r[f"import_s_{side}"])
        assert r[f"rest_s_{side}"] > 0  # the interpreter, torch and the model cost something on both sides
        assert r[f"first_call_s_{side}"] == pytest.approx(r[f"compute_s_{side}"] - r[f"warm_s_{side}"])
    g = r["gain"]
    assert g["whole_s"] == pytest.approx(r["whole_s_direct"] - r["whole_s_ours"])
    assert g["whole_s"] == pytest.approx(g["compute_s"] + g["import_s"] + g["rest_s"])
    assert g["teardown_s_direct"] == pytest.approx(r["teardown_s_direct"]) and 0 <= r["teardown_s_direct"] < r["rest_s_direct"]
    low, _, high = r["spread"]["whole_ratio"]
    target = doc["targets_whole_ratio"][r["method"]]
    assert r["target_met"] == ("every run" if high <= target else "median" if r["whole_ratio"] <= target else "no")


def test_the_committed_speed_results_pass_the_checks() -> None:
    """benchmarks/results/speed.json as committed passes: with SHAP's cap read as a cap (6,000
    evaluations allowed, 1,708 rows done), not as the work done."""
    check_speed(json.loads((ROOT / "benchmarks" / "results" / "speed.json").read_text()))


def test_the_speed_page_tables_are_rendered_from_the_json() -> None:
    """docs/speed.md's speed tables are exactly what benchmarks/speed_tables.py renders from the JSON."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from speed_tables import BEGIN, END, render

    page = (ROOT / "docs" / "speed.md").read_text()
    block = page.split(BEGIN, 1)[1].split(END, 1)[0]
    assert block == "\n" + render(json.loads((ROOT / "benchmarks" / "results" / "speed.json").read_text())), \
        "docs/speed.md's tables are stale: run python benchmarks/speed_tables.py --docs docs/speed.md"


def _schema2_row(**runs: list[float]) -> tuple[dict, dict]:
    """A schema-2 document of one SHAP row whose summaries come from speed.derive."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from speed import derive

    base_runs = {"whole_s_ours": [8.0, 9.0, 8.5], "whole_s_direct": [10.0, 12.0, 9.0], "compute_s_ours": [2.5, 2.7, 2.6],
                 "compute_s_direct": [4.5, 5.0, 4.8], "import_s_ours": [0.6, 0.6, 0.7], "import_s_direct": [2.2, 2.3, 2.2],
                 "load_s_ours": [2.0, 2.1, 2.0], "load_s_direct": [1.5, 1.6, 1.5], "teardown_s_direct": [0.9, 1.0, 0.9],
                 "startup_s_direct": [0.1, 0.1, 0.1], "warm_s_ours": [2.0, 2.1, 2.0], "warm_s_direct": [3.0, 3.2, 3.1]}
    row = {"model": "m", "method": "shap", "library": "shap", "inputs": 2, "repeats": 3, "warm_repeats": 3,
           "work_ours": [{"max_evals": 500}] * 2, "work_direct": [{"max_evals": 500}] * 2, "features_ours": [12, 12],
           "features_direct": [12, 12], "rows_ours": 260, "rows_direct": 280, "rows_ours_results": 258,
           "fwd_s_ours": 1.8, "fwd_s_direct": 2.5, "peak_mb_ours": 500, "peak_mb_direct": 520, "whole_peak_mb_ours": 500,
           "whole_peak_mb_direct": 520, "load_rss_mb_ours": 400, "load_rss_mb_direct": 400, "top_ours": ["a", "b"],
           "top_direct": ["a", "b"], "runs": {**base_runs, **runs}}
    return derive(row), {"schema": 2, "repeats": 3, "warm_repeats": 3, "targets_whole_ratio": {"shap": 0.67}}


def test_speed_checks_catch_unequal_work() -> None:
    """The speed checks fail on a row whose sides did different work, whose counts break SHAP's
    cap, or whose ratio, spread or gain is not what its stored runs give."""
    base = {"method": "lime", "inputs": 2, "repeats": 1, "work_ours": [{"num_samples": 500}] * 2,
            "work_direct": [{"num_samples": 500}] * 2, "features_ours": [12, 12], "features_direct": [12, 12],
            "rows_ours": 900, "rows_direct": 1002, "rows_ours_results": 898, "rows_per_input_direct": 501.0,
            "whole_s_ours": 8.0, "whole_s_direct": 10.0, "whole_ratio": 0.8, "warm_s_ours": 2.0, "warm_s_direct": 4.0,
            "warm_ratio": 0.5, "fwd_s_direct": 2.0, "t_over_fwd_direct": 2.0, "compute_s_ours": 2.5, "compute_s_direct": 4.5,
            "fixed_s_ours": 5.5, "runs": {"whole_s_ours": [8.0], "whole_s_direct": [10.0]}, "peak_mb_ours": 500, "load_rss_mb_ours": 400,
            "peak_mb_direct": 500, "load_rss_mb_direct": 400, "top_agreement": 1.0}
    check_speed({"rows": [base], "repeats": 1})
    shap = {**base, "method": "shap", "work_ours": [{"max_evals": 500}] * 2, "work_direct": [{"max_evals": 500}] * 2,
            "rows_ours": 270, "rows_direct": 284, "rows_ours_results": 268, "rows_per_input_direct": 142.0}
    check_speed({"rows": [shap], "repeats": 1})  # far below the cap: fine, the cap is not the work done
    for bad in ({"work_direct": [{"num_samples": 5000}] * 2}, {"whole_ratio": 0.5}, {"rows_direct": 52},
                {"features_direct": [12, 20]}, {"runs": {"whole_s_ours": [8.0, 9.0], "whole_s_direct": [10.0, 11.0]}}):
        with pytest.raises(AssertionError):
            check_speed({"rows": [{**base, **bad}], "repeats": 1})
    for bad in ({"rows_direct": 1100, "rows_per_input_direct": 550.0}, {"rows_ours": 600, "rows_ours_results": 598}):
        with pytest.raises(AssertionError):  # over the cap of 2 x 500 (+ 2 prediction rows), or ours far above direct
            check_speed({"rows": [{**shap, **bad}], "repeats": 1})
    row, doc = _schema2_row()
    check_speed({**doc, "rows": [row]})
    assert row["whole_ratio"] == pytest.approx(0.8) and row["target_met"] == "no"  # median of 0.8, 0.75, 0.94; 8.5 / 10 of the medians
    for bad in ({"whole_ratio": row["whole_s_ours"] / row["whole_s_direct"]},  # a ratio of medians, not of pairs
                {"spread": {**row["spread"], "compute_ratio": [0.5, 0.55, 0.6]}},
                {"gain": {**row["gain"], "rest_s": 0.0}}, {"target_met": "every run"},
                {"first_call_s_direct": 0.0}, {"compute_s_direct": 99.0}):
        with pytest.raises(AssertionError):
            check_speed({**doc, "rows": [{**row, **bad}]})


def test_gpu_check_agreement_flags_a_flipped_or_shuffled_explanation() -> None:
    """bf16-vs-fp32 figures that can fail: a sign flip or a shuffle falls under the tolerance."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check import TOL_COS, TOL_TOPK, cosine, topk_overlap

    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    assert topk_overlap(a, a + 1e-4 * rng.normal(size=40), False) == 1.0 and cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, -a) < TOL_COS and topk_overlap(a, -a, False) < TOL_TOPK
    assert topk_overlap(a, rng.permutation(a), False) < TOL_TOPK
    img = rng.normal(size=(32, 32))
    assert topk_overlap(img, img.T, True) < TOL_TOPK


def test_quality_targets_need_fewer_rows_and_no_lost_agreement() -> None:
    """A row target is met only with the rows ratio and a top-3 agreement at least the other rule's."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from quality_per_row import agreement, render, targets, third_name

    def row(rule: str, rows: float, top3: float) -> dict:
        return {"case": "c", "method": "lime", "rule": rule, "rows": {"mean": rows}, "top3": {"mean": top3}}

    rows = [row("adaptive (default)", 300, 0.9), row("fixed, our default of before", 1200, 0.9),
            row("fixed 5000 (library default)", 5000, 0.9), row("fixed 250", 250, 0.6)]
    lib, before = targets(rows, {"c": 25})
    assert lib["met"] and lib["applies"] and lib["rows_ratio"] == pytest.approx(5000 / 300)
    assert before["met"] and before["applies"] and before["rows_ratio"] == pytest.approx(4.0)
    rows[0]["top3"]["mean"] = 0.85  # a lost top-3 agreement fails both
    assert not any(t["met"] for t in targets(rows, {"c": 25}))
    rows[0]["top3"]["mean"], rows[0]["rows"]["mean"] = 0.9, 700  # under 2x fewer than before
    assert [t["met"] for t in targets(rows, {"c": 25})] == [True, False]
    assert not targets(rows, {"c": 31})[1]["applies"]  # longer than 30 words: the second target does not apply
    rows[3]["top3"]["mean"] = 0.95  # the smallest budget already agrees: saturated, the first target does not apply
    assert not targets(rows, {"c": 25})[0]["applies"]
    assert "reachable_at_a_third" not in targets(rows, {"c": 25})[0]  # a file of before: no such row, nothing claimed
    rows.append(row(third_name(5000), 1666, 0.8))  # the library's estimator at a third of its rows agrees less
    lib, before = targets(rows, {"c": 25})
    assert lib["top3_library_at_a_third"] == 0.8 and lib["reachable_at_a_third"] is False and "reachable_at_a_third" not in before
    rows[-1]["top3"]["mean"] = 0.9  # as high as at its default: a rule could meet the target by stopping there
    assert targets(rows, {"c": 25})[0]["reachable_at_a_third"] is True
    doc = {"machine": {"date": "d"}, "inputs_per_case": 10, "quick": False, "reference_scale": 10, "longest_input_words": {"c": 25},
           "rows": [{**r, "inputs": 10, **{k: {"mean": 0.9, "se": 0.0, "min": 0.9, "max": 0.9} for k in ("top1", "sign", "top_clear")},
                     "rows": {"mean": r["rows"]["mean"], "se": 0, "min": 0, "max": 0}, "top3": {**r["top3"], "se": 0.0}} for r in rows]}
    doc["targets"] = targets(doc["rows"], {"c": 25})
    assert "| 0.90 at 3.0x fewer rows: as high |" in render(doc)
    ref = np.array([0.1, -2.0, 0.5, 1.0, 0.0])
    assert agreement(ref * 3, ref) == {"top1": 1.0, "top3": 1.0, "sign": 1.0, "top_clear": 1.0}
    assert agreement(np.array([0.1, -2.0, 0.05, 0.02, 0.0]), np.array([0.0, 2.0, 0.1, 0.05, 0.02]))["top_clear"] == 1.0  # only one matters
    flipped = ref.copy()
    flipped[1] = 2.0
    assert agreement(flipped, ref)["sign"] == pytest.approx(2 / 3)
    assert agreement(np.array([0.1, -0.4, 0.5, 1.0, 2.0]), ref) == {"top1": 0.0, "top3": pytest.approx(2 / 3), "sign": 1.0, "top_clear": pytest.approx(2 / 3)}


def test_an_added_case_replaces_its_own_rows_only_and_keeps_its_date(tmp_path: Path) -> None:
    """quality_per_row.py --add and realsize.py --add: the merged JSON holds every other case's rows as
    they were, the new case's rows instead of its old ones, and the date it was measured; a file measured
    with another rule is refused (its rows would not compare)."""
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import quality_per_row as q
    import realsize as rs

    def case(name: str, rows: float) -> list[dict]:  # the three rules the targets read
        spread = {"mean": 0.9, "se": 0.0, "min": 0.9, "max": 0.9}
        return [{"case": name, "method": "lime", "rule": rule, "inputs": 10, "rows": {**spread, "mean": n}, "top1": spread,
                 "top3": spread, "sign": spread, "top_clear": spread}
                for rule, n in (("adaptive (default)", rows), ("fixed, our default of before", 1000), ("fixed 250", 250))]

    out = tmp_path / "q.json"
    args = argparse.Namespace(out=str(out), quick=False)
    q.write(args, 10, 10, case("a", 100) + case("b", 200), {"a": 50, "b": 20}, partial=False)
    base = q.merge_base(args, 10, 10, {"b"})
    q.write(args, 10, 10, case("b", 250), {"b": 25}, partial=False, base=base)
    doc = json.loads(out.read_text())
    assert [(r["case"], r["rows"]["mean"]) for r in doc["rows"] if r["rule"].startswith("adaptive")] == [("a", 100), ("b", 250)]
    assert len(doc["rows"]) == 6 and {t["case"] for t in doc["targets"]} == {"a", "b"}
    assert doc["longest_input_words"] == {"a": 50, "b": 25} and [a["case"] for a in doc["added"]] == ["b"]
    assert doc["machine"] == base["machine"] and f"b measured {doc['added'][0]['date']}" in q.render(doc)
    doc["rule"] = "another rule"
    out.write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="another rule"):
        q.merge_base(args, 10, 10, {"b"})
    with pytest.raises(SystemExit, match="needs --cases"):
        q.merge_base(args, 10, 10, None)

    old = {"rows": [{"model": "m", "size": 32, "method": "ig", "v": 1}, {"model": "n", "size": 64, "method": "ig", "v": 1}]}
    rows, added = rs.merged(old, [{"model": "n", "size": 64, "method": "ig", "v": 2}])
    assert [(r["model"], r["v"]) for r in rows] == [("m", 1), ("n", 2)]
    assert [(a["model"], a["size"]) for a in added] == [("n", 64)] and added[0]["date"]


@pytest.mark.slow
def test_batching_benchmark_quick_equal_both_ways(tmp_path: Path) -> None:
    if not (MODELS / "sentiment-bert").exists():
        pytest.skip("bundled models missing")
    out = tmp_path / "batching.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "batching.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert {(r["method"], r["batch_inputs"]) for r in doc["rows"]} == {("shap", "1"), ("shap", "8"), ("lime", "1"), ("lime", "8")}
    for r in doc["rows"]:  # the equality fields, not the timings
        assert r["rows_equal"] and r["top_equal"] and r["failures"] == 0, r
        assert r["max_abs_score_diff"] <= 1e-5, r
    assert [r["in_flight"] for r in doc["rows"]] == [1, 8, 1, 8]
    assert "load_average" in doc["machine"] and "max |diff|" in proc.stdout


def test_the_real_size_table_in_the_docs_is_the_json_rendered() -> None:
    """docs/speed.md's real-size table is benchmarks/results/realsize.json as realsize.py renders it: a full run
    (not quick, not partial) with issue 28's time targets computed in it; rerun --render after a new measurement."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from realsize import BEGIN, END, render  # type: ignore[import-not-found]

    doc = json.loads((ROOT / "benchmarks" / "results" / "realsize.json").read_text())
    assert not doc["quick"] and not doc["partial"] and doc["targets"]
    page = (ROOT / "docs" / "speed.md").read_text()
    assert page[page.index(BEGIN): page.index(END) + len(END)] == render(doc)


def test_the_readme_speed_table_is_the_real_size_json_rendered() -> None:
    """The README's speed table is benchmarks/results/realsize.json as realsize.py summarises it (every
    configuration where SHAP or LIME was measured, at our defaults and at the fixed budgets, and the targets):
    a figure the benchmark did not produce cannot be there."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from realsize import SUMMARY_BEGIN, SUMMARY_END, render_summary  # type: ignore[import-not-found]

    doc = json.loads((ROOT / "benchmarks" / "results" / "realsize.json").read_text())
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(SUMMARY_BEGIN): readme.index(SUMMARY_END) + len(SUMMARY_END)]
    assert block == render_summary(doc)
    cues = next(r for r in doc["rows"] if (r["model"], r["size"], r["method"]) == ("bert-base-cues", 32, "shap"))
    assert f"| {cues['sec_per_input']:.1f} s ({cues['rows_per_input']:.0f} rows) |" in block
    assert block.count("\n| ") == 1 + len({(r["model"], r["size"]) for r in doc["rows"] if r["method"] in ("shap", "lime")})


def test_the_real_size_gpt_prompt_is_the_same_in_every_process() -> None:
    """realsize.py runs each method in its own process: each must explain the same GPT-2 prompt (a fast
    tokenizer's vocabulary comes in a new order each process; an unsorted draw gave each method its own)."""
    code = ("import sys, transformers; sys.path[:0] = ['benchmarks', 'examples']; import realsize; "
            "tok = transformers.AutoTokenizer.from_pretrained('examples/models/planted-gpt2'); print(realsize.gpt_prompt(tok, 32))")
    prompts = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout for _ in range(3)}
    assert len(prompts) == 1 and len(next(iter(prompts)).split()) >= 5, prompts
