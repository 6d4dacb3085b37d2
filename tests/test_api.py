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
    from explain.loading.cnn import build_architecture

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
    assert "unwatchable" in explain.show(res[0], display=False)
    assert "unwatchable" in explain.show(res, display=False)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("analyze_*.py")))
def test_example_scripts_run(script: str, tmp_path: Path) -> None:
    if not MODELS.exists():
        pytest.skip("bundled models missing")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()


# ---- errors, warnings and settings checked before the model runs -------------------------
FAST_IG = {"n_steps": 8, "adaptive": False}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"methods": ["igg"]}, "MethodError", "unknown method 'igg'; available methods: ig,"),
        ({"ig": {"n_stepz": 3}}, "MethodError", "unknown setting 'n_stepz' for method 'ig'; its settings are: n_steps"),
        ({"ig": {"baseline": "blak"}}, "MethodError", "ig.baseline='blak'"),
        ({"ig": {"output": "logits"}}, "MethodError", "use one of: probability, logit, log-probability"),
        ({"ig": {"n_steps": 0}}, "MethodError", "ig.n_steps=0 must be a number >= 1"),
        ({"ig": {"n_steps": 2.5}}, "MethodError", "ig.n_steps=2.5 must be int"),
        ({"shap": {"max_evals": -5}, "methods": ["shap"]}, "MethodError", "shap.max_evals=-5"),
        ({"lime": {}, "methods": ["ig"], "target": "happy"}, "TargetError", "unknown target label 'happy'"),
        ({"errors": "ignore"}, "ExplainError", "errors='ignore'"),
    ],
)
def test_bad_settings_raise_before_any_model_call(tiny_bert: Path, kwargs: dict, error: str, message: str) -> None:
    model = explain.load(tiny_bert, device="cpu")
    rows = model.runner.rows
    with pytest.raises(getattr(explain, error)) as info:
        explain.explain(model, [TEXT], **kwargs)
    assert message in str(info.value)
    assert model.runner.rows == rows  # nothing ran


def test_errors_raise_names_the_input_and_record_keeps_going(tiny_bert: Path) -> None:
    model = explain.load(tiny_bert, device="cpu")
    inputs = ["a great film", 5, "", "dull"]
    with pytest.raises(explain.InputError, match=r"^input 1"):
        explain.explain(model, inputs, ig=FAST_IG)
    with pytest.warns(explain.ExplainWarning, match=r"^2 of 4 inputs failed \(first: input 1"):
        results = explain.explain(model, inputs, ig=FAST_IG, errors="record")
    assert sorted({f.input for f in results.failures}) == [1, 2]
    assert sorted({e.input for e in results}) == [0, 3]


def test_one_counted_warning_for_truncation(tiny_bert: Path) -> None:
    import warnings

    model = explain.load(tiny_bert, device="cpu")
    long = " ".join(["film"] * 30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explain.explain(model, [long, "fine", long], ig=FAST_IG, max_length=10)
    mine = [w for w in caught if issubclass(w.category, explain.ExplainWarning)]
    # the random tiny BERT barely moves its output (|scores| sum to ~1e-5): its IG has no evidence
    assert [str(w.message) for w in mine] == ["2 inputs truncated; ig found no evidence (nothing moves the output) on 3 inputs"]
    assert mine[0].filename == __file__  # points at the caller's line, not the engine's


def test_failed_self_checks_are_counted_per_method_and_check() -> None:
    from explain.results.explanation import Explanation, InputRecord, ModelInfo, Results, SelfCheck, Target
    from explain.running.run_warnings import summary

    def exp(method: str, i: int, name: str, passed: bool) -> Explanation:
        check = SelfCheck(name, passed, 0.5, 0.1, "")
        return Explanation(method=method, family="text-classifier", input=i, target=Target(0, "a", 1.0),
                           features=("x",), scores=np.zeros(1), granularity="word", self_checks=(check,))

    info = ModelInfo(family="text-classifier", path="-", content_hash="-", parameters=1, labels=("a",))
    records = [InputRecord(index=i, kind="text", text="x") for i in range(10)]
    results = Results(
        [exp("ig", 0, "completeness", False), exp("ig", 1, "completeness", True),
         exp("lime", 2, "surrogate_fit", False), exp("lime", 3, "surrogate_fit", False), exp("shap", 4, "stability", True)],
        model=info, inputs=records,
    )
    assert summary(results) == "IG did not converge on 1 input; LIME fit R^2 below threshold on 2 inputs"
    assert summary(Results([exp("shap", 4, "stability", True)], model=info, inputs=records)) is None


def test_run_baseline_fills_unset_baselines_only(tiny_bert: Path) -> None:
    from explain.running.engine import _with_baseline
    from explain.methods import get

    assert _with_baseline(get("ig"), None, "mask")["baseline"] == "mask"
    assert _with_baseline(get("ig"), {"baseline": "pad"}, "mask")["baseline"] == "pad"  # the method's own wins
    assert "baseline" not in _with_baseline(get("attention"), None, "mask")  # no such setting
    assert _with_baseline(get("shap"), {"mask": "drop"}, "unk") == {"mask": "drop"}  # the old name counts as set
    model = explain.load(tiny_bert, device="cpu")
    results = explain.explain(model, [TEXT], ig=FAST_IG, baseline="unk")
    assert results.run["baseline"] == "unk" and results.run["settings"]["ig"]["baseline"] == "unk"
    with pytest.raises(explain.MethodError, match="unknown baseline 'blur'"):
        explain.explain(model, [TEXT], baseline="blur")
