"""The Python API: in-memory models, pipelines, notebook display, and the example scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from explain.errors import CheckpointError

from conftest import MODELS, ROOT

TEXT = "the movie was unwatchable"


def test_in_memory_model_and_tokenizer_equal_the_loaded_folder(tiny_bert: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    wrapped = explain.from_model(hf, tok, device="cpu")
    loaded = explain.load(tiny_bert, device="cpu")
    assert wrapped.family == "text-classifier" and wrapped.labels == loaded.labels
    a = explain.explain(wrapped, [TEXT], methods=["ig"])[0]
    b = explain.explain(loaded, [TEXT], methods=["ig"])[0]
    assert np.allclose(a.scores, b.scores, atol=1e-6)
    # a (model, tokenizer) pair and a pipeline are accepted by explain() directly
    assert np.allclose(explain.explain((hf, tok), [TEXT])[0].scores, a.scores, atol=1e-6)
    from transformers import pipeline

    pipe = pipeline("text-classification", model=hf, tokenizer=tok, device=-1)
    assert np.allclose(explain.explain(pipe, [TEXT])[0].scores, a.scores, atol=1e-6)


def test_plain_module_with_preprocessing() -> None:
    from explain.cnn import build_architecture

    torch.manual_seed(0)
    net = build_architecture("SmallCNN", {"in_channels": 1, "num_classes": 3, "width": 8})
    model = explain.from_model(net, preprocessing={"size": [32, 32], "channels": 1, "mean": [0.5], "std": [0.5]}, labels=["a", "b", "c"], device="cpu")
    image = (np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)
    [e] = explain.explain(model, [image], methods=["ig"])
    assert e.scores.shape == (40, 30) and e.target.label in ("a", "b", "c")
    with pytest.raises(CheckpointError, match="needs preprocessing"):
        explain.from_model(net)


def test_explain_refuses_foreign_objects() -> None:
    with pytest.raises(CheckpointError, match="explain.load"):
        explain.explain(object(), ["x"])


def test_inline_display_in_notebooks(tiny_bert: Path) -> None:
    res = explain.explain(explain.load(tiny_bert, device="cpu"), [TEXT], methods=["ig"])
    assert "unwatchable" in res[0]._repr_html_()
    assert "unwatchable" in res._repr_html_()


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("analyze_*.py")))
def test_example_scripts_run(script: str, tmp_path: Path) -> None:
    if not MODELS.exists():
        pytest.skip("bundled models missing")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
