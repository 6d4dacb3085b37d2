"""Planted truth: on the bundled models, methods that find the planted cause beat random attributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import explain
from explain.results.explanation import Explanation, Results
from explain.metrics import baseline_explanation, evaluate, prepare_record

from conftest import MODELS
from planted_data import digit_images, sentiment_examples

N = 8  # held-out inputs with a planted cause per model: enough to separate from chance, cheap on 2 CPUs
# A fixed 20-step IG keeps these tests fast (completeness is tested elsewhere); without
# `adaptive` off, IG on the randomised network can escalate to thousands of steps.
IG_FAST = {"n_steps": 20, **({"adaptive": False} if "adaptive" in {f for f, *_ in explain.methods.get("ig").describe_settings()} else {})}


def with_controls(model: explain.Adapter, results: Results, seed: int = 0) -> Results:
    """Return results plus, per input, a random attribution and the model-blind baseline (position / edges)."""
    rng = np.random.default_rng(seed)
    extra: list[Explanation] = []
    for record in results.inputs:
        first = results.for_input(record.index)[0]
        noise = rng.standard_normal(np.shape(first.scores)).astype(np.float32)
        extra.append(first.replace(method="random", scores=noise, settings={}, checks={}, metrics={}, extras={}))
        extra.append(baseline_explanation(model, prepare_record(model, record), first.target))
    return Results(list(results) + extra, model=results.model, inputs=results.inputs, run=results.run)


def mean(scored: Results, method: str, key: str) -> float:
    return float(scored.run["metrics"]["methods"][method][key]["mean"])


@pytest.fixture(scope="module")
def text_scored(sentiment_bert: Path) -> Results:
    model = explain.load(sentiment_bert, device="cpu")
    rows = [r for r in sentiment_examples(200, seed=7, split="heldout") if r[2] is not None][:N]
    results = explain.explain(model, [t for t, _, _ in rows], methods=["ig", "ablation"], ig=IG_FAST)
    results = with_controls(model, results)
    rationales = {i: [word] for i, (_, _, word) in enumerate(rows)}
    return evaluate(model, results, metrics=("faithfulness", "sanity"), rationales=rationales, sanity_steps=1, steps=10, random_orders=3)


@pytest.fixture(scope="module")
def image_scored() -> Results:
    path = MODELS / "digits-cnn"
    if not (path / "config.json").exists():
        pytest.skip("bundled model examples/models/digits-cnn is missing (run examples/train_cnn.py)")
    model = explain.load(path, device="cpu")
    rows = [r for r in digit_images(60, seed=7, split="heldout") if r[2] is not None][:N]
    results = explain.explain(model, [img for img, _, _ in rows], methods=["gradcam", "occlusion", "ig"], ig=IG_FAST)
    results = with_controls(model, results)
    masks = {}
    for i, (_, _, (y0, x0, y1, x1)) in enumerate(rows):
        masks[i] = np.zeros((32, 32), dtype=bool)
        masks[i][y0:y1, x0:x1] = True
    # sanity for the cheap maps and the edge baseline (IG would triple the cost); occlusion runs
    # through the inference copy of the CNN, which must follow the randomised weights
    cheap = Results([e for e in results if e.method in ("gradcam", "occlusion", "edges")], model=results.model, inputs=results.inputs, run=results.run)
    sane = evaluate(model, cheap, metrics=("sanity",), sanity_steps=1)
    scored = evaluate(model, results, metrics=("faithfulness",), rationales=masks, steps=10, random_orders=3)
    scored.run["metrics"]["sanity_run"] = {**sane.run["metrics"]["methods"], "flagged": sane.run["metrics"]["sanity"]["flagged"]}
    return scored


@pytest.mark.parametrize("method", ["ig", "ablation"])
def test_text_methods_beat_random_attributions(text_scored: Results, method: str) -> None:
    # the only expected errors: the random control has no method to re-run on the randomised model
    assert {(x["method"], x["metric"]) for x in text_scored.run["metrics"]["errors"]} <= {("random", "sanity")}
    assert mean(text_scored, method, "pointing_game") >= 0.875  # they do find the planted word
    assert mean(text_scored, method, "deletion_auc") < 0.5 * mean(text_scored, "random", "deletion_auc")
    assert mean(text_scored, method, "deletion_auc") < mean(text_scored, method, "deletion_auc_random")
    assert mean(text_scored, method, "comprehensiveness") > mean(text_scored, "random", "comprehensiveness") + 0.2
    assert mean(text_scored, method, "sufficiency") < mean(text_scored, "random", "sufficiency")
    assert mean(text_scored, method, "insertion_auc") > mean(text_scored, method, "insertion_auc_random")


def test_sanity_flags_word_position_and_passes_ig(text_scored: Results) -> None:
    assert mean(text_scored, "position", "sanity_flag") == 1.0
    assert mean(text_scored, "position", "sanity_rank_corr") == pytest.approx(1.0)
    assert mean(text_scored, "ig", "sanity_flag") <= 0.25
    rhos = [e.metrics["sanity_rank_corr"] for e in text_scored.by_method("ig")]
    assert float(np.mean(np.abs(rhos))) < 0.5
    assert text_scored.run["metrics"]["sanity"]["blocks"] == ["bert.embeddings.word_embeddings"]  # one stage: all of it
    assert text_scored.run["metrics"]["sanity"]["flagged"] == {"ig": False, "ablation": False, "position": True}


@pytest.mark.parametrize("method", ["gradcam", "occlusion", "ig"])
def test_image_methods_beat_random_attributions(image_scored: Results, method: str) -> None:
    assert image_scored.run["metrics"]["errors"] == []
    assert mean(image_scored, method, "pointing_game") >= 0.875
    assert mean(image_scored, method, "deletion_auc") < 0.5 * mean(image_scored, "random", "deletion_auc")
    assert mean(image_scored, method, "deletion_auc") < mean(image_scored, method, "deletion_auc_random")
    assert mean(image_scored, method, "comprehensiveness") > mean(image_scored, "random", "comprehensiveness") + 0.2


def test_sanity_flags_image_edges_and_passes_gradcam(image_scored: Results) -> None:
    sane = image_scored.run["metrics"]["sanity_run"]
    assert sane["edges"]["sanity_flag"]["mean"] == 1.0
    assert sane["gradcam"]["sanity_flag"]["mean"] <= 0.25
    assert sane["occlusion"]["sanity_flag"]["mean"] <= 0.25
    assert sane["flagged"] == {"gradcam": False, "occlusion": False, "edges": True}
