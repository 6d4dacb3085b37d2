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
        rows = doc["rows"]
        sides = {(r["family"], r["method"], r["side"]) for r in rows}
        for family in ("text-classifier", "image-classifier"):
            for method, lib in (("ig", "captum"), ("shap", "shap"), ("lime", "lime")):
                assert (family, method, "explain") in sides and (family, method, lib) in sides
        for method in ("ig", "ablation", "shap", "lime"):
            assert ("causal-lm", method, "explain") in sides and ("causal-lm", method, "captum") in sides
        assert all(r["sec_per_input"] > 0 and 0 <= r["hit_rate"] <= 1 for r in rows)
        assert "s/input" in proc.stdout
    elif script == "scaling.py":
        tables = {r["table"] for r in doc["rows"]}
        assert tables == {"length", "inputs", "generated", "memory"}
        assert all(r["seconds"] > 0 for r in doc["rows"])
        capped = [r for r in doc["rows"] if r["table"] == "memory"]
        assert len(capped) == 2 and all(r["rc"] == 0 for r in capped)
        assert "rows/token" in proc.stdout
    else:
        assert doc["inputs"] == 200 and len(doc["samples"]) >= 3
