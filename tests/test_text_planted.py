"""Planted truth: on the bundled sentiment classifier, every method points at the planted word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import explain

from planted_data import sentiment_examples

N = 22  # held-out sentences carrying a planted word (the model gets all right: >= 20 count)


@pytest.fixture(scope="module")
def heldout(sentiment_bert: Path) -> tuple[explain.Results, list[str]]:
    model = explain.load(sentiment_bert, device="cpu")
    rows = [r for r in sentiment_examples(400, seed=123, split="heldout") if r[2] is not None][:N]
    texts = [t for t, _, _ in rows]
    results = explain.explain(model, texts, methods=["ig", "shap", "lime", "attention"])
    correct = [i for i, (t, label, _) in enumerate(rows) if results.inputs[i].prediction.label == label]
    assert len(correct) >= 20, f"the bundled model classifies only {len(correct)} of {N} held-out sentences correctly"
    planted = [rows[i][2] if i in correct else "" for i in range(len(rows))]
    return results, planted


@pytest.mark.parametrize("method", ["ig", "shap", "lime"])
def test_planted_word_is_top_scored(heldout: tuple[explain.Results, list[str]], method: str) -> None:
    results, planted = heldout
    hits, total = 0, 0
    for e in results.by_method(method):
        if not planted[e.input]:
            continue
        total += 1
        hits += e.features[int(np.argmax(e.scores))] == planted[e.input]
    assert total >= 20
    assert hits / total >= 0.9, f"{method}: planted word top-scored in {hits}/{total}"


def test_ig_completeness_holds_at_defaults_on_a_confident_model(heldout: tuple[explain.Results, list[str]]) -> None:
    # the bundled classifier answers with p > 0.99: 50 steps miss much of the output change, so
    # the default doubles the steps until the gap is within 1% (or 1e-4 absolute)
    for e in heldout[0].by_method("ig"):
        gap, change = e.checks["convergence_delta"], abs(e.checks["output_change"])
        assert gap <= max(0.01 * change, 1e-4), (e.input, e.settings["n_steps"], gap, change)


def test_relevance_view_points_at_the_planted_word_more_often_than_chance(heldout: tuple[explain.Results, list[str]]) -> None:
    results, planted = heldout
    rows = [e for e in results.by_method("attention") if planted[e.input]]
    hits = sum(e.features[int(np.argmax(e.scores))] == planted[e.input] for e in rows)
    chance = float(np.mean([1 / len(e.features) for e in rows]))
    assert hits / len(rows) > 2 * chance
