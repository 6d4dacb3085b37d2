"""Planted truth for images: on the bundled digits CNN, each method points at the pasted digit.

The digits model answers with the one digit pasted on a cluttered canvas and says "none" when
that digit is covered (grey, black or blurred; see examples/planted_data.py), so the digit's box
is a ground truth for where the evidence is. Pointing game (Zhang et al. 2016,
https://arxiv.org/abs/1608.00507): a hit when the most attributed pixel lies in the box.
"""

from __future__ import annotations

import numpy as np
import pytest

import explain
from explain.adapters.image import ImageClassifierAdapter

from conftest import MODELS

N_IMAGES = 25
METHODS = ("ig", "gradcam", "shap", "lime", "occlusion")


@pytest.fixture(scope="module")
def digits() -> ImageClassifierAdapter:
    path = MODELS / "digits-cnn"
    if not (path / "model.safetensors").exists():
        pytest.skip("bundled model examples/models/digits-cnn is missing (run examples/train_cnn.py)")
    return explain.load(path, device="cpu")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def planted(digits: ImageClassifierAdapter) -> list[tuple[np.ndarray, str, tuple[int, int, int, int]]]:
    """Held-out images with a visible digit that the model classifies correctly."""
    from planted_data import digit_images

    chosen = []
    for img, label, box in digit_images(200, 11, split="heldout"):
        if box is not None and digits.prepare(img, 0).record.prediction.label == label:
            chosen.append((img, label, box))
        if len(chosen) == N_IMAGES:
            break
    assert len(chosen) == N_IMAGES
    return chosen


def pointed_pixel(scores: np.ndarray) -> tuple[int, int]:
    """Return the most attributed pixel; among tied maxima, the one nearest their centre.

    Superpixel methods (shap, lime) give every pixel of a segment the same score, so "the"
    maximum is a whole segment; argmax's raster order would pick its top-left pixel, which says
    more about the scan order than about the method.
    """
    top = np.argwhere(scores >= scores.max() - 1e-6 * max(float(np.ptp(scores)), 1e-12))
    centre = top.mean(0)
    y, x = top[np.argmin(((top - centre) ** 2).sum(1))]
    return int(y), int(x)


@pytest.fixture(scope="module")
def results(digits: ImageClassifierAdapter, planted: list) -> explain.Results:
    """Every image method with its default settings (the ones users get) on the planted images."""
    return explain.explain(digits, [img for img, _, _ in planted], methods=list(METHODS), seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_pointing_game(results: explain.Results, planted: list, method: str) -> None:
    exps = results.by_method(method)
    assert len(exps) == N_IMAGES and not results.failures
    hits = []
    for e in exps:
        y0, x0, y1, x1 = planted[e.input][2]
        assert e.target.label == planted[e.input][1]
        y, x = pointed_pixel(e.scores)
        hits.append(y0 <= y < y1 and x0 <= x < x1)
    rate = float(np.mean(hits))
    seconds = float(np.mean([e.seconds for e in exps]))
    print(f"{method}: pointing game {rate:.0%} over {N_IMAGES} images, {seconds:.3f} s per image")
    assert rate >= 0.9, f"{method} points inside the digit for only {rate:.0%} of images (missed: {[i for i, h in enumerate(hits) if not h]})"
