"""The benchmarks run in reduced size in CI: their tables print and their JSON is well-formed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MODELS, ROOT


@pytest.mark.slow
@pytest.mark.parametrize("script", ["speed.py", "memory.py", "scaling.py"])
def test_benchmark_quick_run(script: str, tmp_path: Path) -> None:
    if not (MODELS / "sentiment-bert").exists():
        pytest.skip("bundled models missing")
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    if script == "speed.py":
        check_speed(doc)
        assert {r["method"] for r in doc["rows"]} == {"ig", "lime"}
        assert "whole ours" in proc.stdout and doc["machine"]["date"]
    elif script == "scaling.py":
        tables = {r["table"] for r in doc["rows"]}
        assert tables == {"length", "inputs", "generated", "memory"}
        assert all(r["seconds"] > 0 for r in doc["rows"])
        capped = [r for r in doc["rows"] if r["table"] == "memory"]
        assert len(capped) == 2 and all(r["rc"] == 0 for r in capped)
        assert "rows/token" in proc.stdout
    else:
        assert doc["inputs"] == 200 and len(doc["samples"]) >= 3


def check_speed(doc: dict) -> None:
    """Equal work on both sides, counts measured (not typed in), ratios from the stored times."""
    for r in doc["rows"]:
        n = r["inputs"]
        # the direct side was handed exactly the per-input work ours did, over the same features
        assert r["work_direct"] == r["work_ours"] and len(r["work_ours"]) == n
        assert r["features_direct"] == r["features_ours"]
        # rows are counted at the model's forward on both sides: at least the work asked for
        # (IG: one gradient row per step; LIME: one per sample, less what our cache answered)
        key = "n_steps" if r["method"] == "ig" else "num_samples" if r["method"] == "lime" else "max_evals"
        asked = sum(w[key] for w in r["work_ours"])
        assert r["rows_direct"] >= asked and r["rows_ours"] > 0
        assert r["rows_per_input_direct"] == pytest.approx(r["rows_direct"] / n)
        # two independent counts of ours (the hook in the warm run, the results of the CLI run)
        # differ by at most the one prediction row per input
        assert abs(r["rows_ours"] - r["rows_ours_results"]) <= n
        # every ratio is recomputed from the stored figures, and medians from the stored runs
        assert r["whole_ratio"] == pytest.approx(r["whole_s_ours"] / r["whole_s_direct"])
        assert r["warm_ratio"] == pytest.approx(r["warm_s_ours"] / r["warm_s_direct"])
        assert r["t_over_fwd_direct"] == pytest.approx(r["warm_s_direct"] / r["fwd_s_direct"])
        assert r["fixed_s_ours"] == pytest.approx(r["whole_s_ours"] - r["compute_s_ours"])
        assert len(r["runs"]["whole_s_ours"]) == doc["repeats"]
        assert r["whole_s_ours"] == pytest.approx(sorted(r["runs"]["whole_s_ours"])[len(r["runs"]["whole_s_ours"]) // 2])
        assert 0 < r["compute_s_ours"] < r["whole_s_ours"] and 0 < r["compute_s_direct"] < r["whole_s_direct"]
        assert r["peak_mb_ours"] >= r["load_rss_mb_ours"] > 0 and r["peak_mb_direct"] >= r["load_rss_mb_direct"] > 0
        assert 0 <= r["top_agreement"] <= 1


def test_speed_checks_catch_unequal_work() -> None:
    """The speed checks fail on a row whose sides did different work or whose ratio is stale."""
    base = {"method": "lime", "inputs": 2, "repeats": 1, "work_ours": [{"num_samples": 500}] * 2,
            "work_direct": [{"num_samples": 500}] * 2, "features_ours": [12, 12], "features_direct": [12, 12],
            "rows_ours": 900, "rows_direct": 1002, "rows_ours_results": 898, "rows_per_input_direct": 501.0,
            "whole_s_ours": 8.0, "whole_s_direct": 10.0, "whole_ratio": 0.8, "warm_s_ours": 2.0, "warm_s_direct": 4.0,
            "warm_ratio": 0.5, "fwd_s_direct": 2.0, "t_over_fwd_direct": 2.0, "compute_s_ours": 2.5, "compute_s_direct": 4.5,
            "fixed_s_ours": 5.5, "runs": {"whole_s_ours": [8.0]}, "peak_mb_ours": 500, "load_rss_mb_ours": 400,
            "peak_mb_direct": 500, "load_rss_mb_direct": 400, "top_agreement": 1.0}
    check_speed({"rows": [base], "repeats": 1})
    for bad in ({"work_direct": [{"num_samples": 5000}] * 2}, {"whole_ratio": 0.5}, {"rows_direct": 52},
                {"features_direct": [12, 20]}, {"runs": {"whole_s_ours": [8.0, 9.0]}}):
        with pytest.raises(AssertionError):
            check_speed({"rows": [{**base, **bad}], "repeats": 1})
