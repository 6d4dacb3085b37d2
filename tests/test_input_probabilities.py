"""Classifier adapters record the model's probability of every class with each input.

`InputRecord.probabilities` is what the report's answer card and the results file show beside
the prediction: it must be the model's own softmax on the unperturbed input, in label order,
and the true label (`label`) is left for the caller (the CLI) to fill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.results.results_io import loads, save

from conftest import MODELS


@pytest.fixture(scope="module")
def bert(sentiment_bert: Path) -> Any:
    return explain.load(sentiment_bert, device="cpu")


@pytest.fixture(scope="module")
def digits() -> Any:
    path = MODELS / "digits-cnn"
    if not (path / "model.safetensors").exists():
        pytest.skip("bundled model examples/models/digits-cnn is missing (run examples/train_cnn.py)")
    return explain.load(path, device="cpu")


def test_text_record_holds_every_class_probability(bert: Any) -> None:
    text = "the movie was great and the acting was fun"
    rec = bert.prepare(text, 0).record
    enc = bert.tokenizer(text, return_tensors="pt")
    with torch.no_grad():  # the model called directly, not through the adapter's runner
        want = torch.softmax(bert.model(**enc).logits[0].double(), -1).numpy()
    assert rec.probabilities is not None and len(rec.probabilities) == len(bert.labels) == len(want)
    assert all(isinstance(p, float) for p in rec.probabilities)
    np.testing.assert_allclose(rec.probabilities, want, atol=1e-6)
    assert rec.prediction is not None and rec.probabilities[rec.prediction.index] == rec.prediction.probability
    assert rec.label is None  # the true label is the caller's to give


def test_image_record_holds_every_class_probability(digits: Any) -> None:
    from planted_data import digit_images

    img = next(img for img, _, box in digit_images(6, 3, split="heldout") if box is not None)
    ex = digits.prepare(img, 0)
    with torch.no_grad():
        want = torch.softmax(digits.logits(ex.state.pixels).double(), -1)[0].numpy()
    rec = ex.record
    assert rec.probabilities is not None and len(rec.probabilities) == len(digits.labels)
    np.testing.assert_allclose(rec.probabilities, want, atol=1e-5)
    assert int(np.argmax(rec.probabilities)) == rec.prediction.index and rec.label is None


def test_probabilities_survive_the_results_file(bert: Any, tmp_path: Path) -> None:
    res = explain.explain(bert, ["a good film", "a dull film"], methods=["ablation"])
    path = save(res, tmp_path / "run.json")
    back = loads(path.read_text())
    assert [r.probabilities for r in back.inputs] == [r.probabilities for r in res.inputs]
    assert all(r.probabilities is not None and abs(sum(r.probabilities) - 1) < 1e-5 for r in back.inputs)
