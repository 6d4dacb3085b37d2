"""A classifier's head decides what its probabilities are: one softmax over the classes, a
sigmoid per label (problem_type "multi_label_classification"), or none (a regression head: one
output, or problem_type "regression"). Read with a softmax, a multi-label model's label scores
would depend on the other labels, and a one-output regression head's softmax is always 1, so
every attribution came out exactly 0 while every self-check passed. The references here are
the model's logits through the head's own function, computed directly."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from conftest import bert_vocab

TEXT = "the movie was unwatchable and awful"


def save_head(folder: Path, problem: str | None, labels: int) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = bert_vocab()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=64, num_labels=labels, problem_type=problem, initializer_range=0.2)
    folder.mkdir(parents=True, exist_ok=True)
    BertForSequenceClassification(cfg).eval().save_pretrained(folder)
    BertTokenizerFast(vocab=vocab).save_pretrained(folder)
    return folder


def _logits(model: explain.adapters.text.TextClassifierAdapter, ids: list[int]) -> torch.Tensor:  # type: ignore[name-defined]
    with torch.no_grad():
        return model.model(input_ids=torch.tensor([ids])).logits[0].float()


def test_a_multi_label_head_is_read_with_a_sigmoid_per_label(tmp_path: Path) -> None:
    model = explain.load(save_head(tmp_path / "multi", "multi_label_classification", 3), device="cpu")
    assert model.head == "sigmoid"
    ids = model.tokenizer(TEXT)["input_ids"]
    res = explain.explain(model, [TEXT], methods=["ig", "shap"], target="all")
    sig = torch.sigmoid(_logits(model, ids)).numpy()
    assert np.allclose(res.inputs[0].probabilities, sig, atol=1e-6)
    assert not np.isclose(sum(res.inputs[0].probabilities), 1.0, atol=1e-3)  # not a softmax
    masked = [ids[0]] + [model.mask_id] * (len(ids) - 2) + [ids[-1]]
    base = torch.sigmoid(_logits(model, masked)).numpy()
    for e in res.by_method("shap"):
        assert e.checks["output"] == pytest.approx(sig[e.target.index], abs=1e-6)
        assert e.checks["base_value"] == pytest.approx(base[e.target.index], abs=1e-6)
    for e in res.by_method("ig"):
        assert e.checks["output_change"] == pytest.approx(sig[e.target.index] - base[e.target.index], abs=1e-6)
        assert e.reliable


@pytest.mark.parametrize("problem", [None, "regression"])
def test_a_regression_head_explains_its_value(tmp_path: Path, problem: str | None) -> None:
    folder = save_head(tmp_path / f"reg-{problem}", problem, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = explain.load(folder, device="cpu")
    assert model.head == "identity"
    assert any("regression head" in str(w.message) for w in caught if issubclass(w.category, explain.ExplainWarning))
    ids = model.tokenizer(TEXT)["input_ids"]
    value = float(_logits(model, ids)[0])
    base = float(_logits(model, [ids[0]] + [model.mask_id] * (len(ids) - 2) + [ids[-1]])[0])
    res = explain.explain(model, [TEXT], methods=["ig", "shap", "ablation"])
    assert res.inputs[0].prediction.probability == pytest.approx(value, abs=1e-6)
    for e in res:
        assert np.abs(e.scores).max() > 1e-4, e.method  # a softmax of one logit made every score exactly 0
    [ig], [shap] = res.by_method("ig"), res.by_method("shap")
    assert ig.checks["output_change"] == pytest.approx(value - base, abs=1e-6)
    assert (shap.checks["output"], shap.checks["base_value"]) == pytest.approx((value, base), abs=1e-6)
    with pytest.raises(explain.ExplainError, match="regression head has no log-probability"):
        explain.explain(model, [TEXT], methods=["ig"], ig={"output": "log-probability"})


def test_the_cli_says_a_regression_head_is_explained_as_its_value(tmp_path: Path) -> None:
    folder = save_head(tmp_path / "reg-cli", None, 1)
    proc = subprocess.run([sys.executable, "-m", "explain.cli.main", "run", str(folder), "--text", TEXT, "--out", str(tmp_path / "out"),
                           "--no-report", "--quiet", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("explain: warning:") and "regression head" in proc.stderr
