"""Planted truth for vision transformers: on the planted-patch task, do ViT maps point at the square as a CNN's Grad-CAM does?

Two hand-written ViTs (examples/own_models/vit.py, 4 x 4 patches, F.scaled_dot_product_attention;
one reads a class token, one the mean of its patch tokens) and a small CNN (cnn.py) are trained
here (seed 0) on the same data (examples/own_models/planted.py `patch_images`: a bright 7-9 px
square on a noisy 32 x 32 canvas says "square"; no square, or a covered one, says "none"; grey
and black blocks elsewhere). Each is checked first: held-out accuracy, and covering the square
gives "none". Then the pointing game (Zhang et al. 2016, https://arxiv.org/abs/1608.00507: a
hit when the most attributed pixel lies in the square, within their 15 px tolerance scaled to
the canvas, 2 px) on held-out squares all three get right: attention rollout, relevance and
token Grad-CAM of each ViT against the CNN's Grad-CAM.

benchmarks/vit_pointing.py plays the same game over three training seeds
(benchmarks/results/vit_pointing.json): rollout hits every square on both ViTs at every seed, as
the CNN's Grad-CAM does; relevance and token Grad-CAM do at some seeds and not at others. So
here, at seed 0: rollout, relevance (both ViTs) and token Grad-CAM (mean-pooled ViT) must hit at
least as often as the CNN's Grad-CAM and 90%; token Grad-CAM on the class-token ViT hits about
half (pytorch-grad-cam's recipe, the same layer and maths), is held above chance, and its
reaching the CNN's rate is a strict expected failure, so the day it passes the test says so. The
model-randomisation sanity check (Adebayo et al. 2018) runs on relevance and token Grad-CAM:
after the last stage neither keeps its ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import explain

from vit_models import planted

N_IMAGES = 30
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two ViTs and the CNN trained on the planted-patch task, loaded from their explain-torch folders."""
    root = tmp_path_factory.mktemp("patch-task")
    folders = {
        "class-token ViT": planted.save_patch_vit(root / "vit-cls", steps=200, attention="sdpa"),
        "mean-pooled ViT": planted.save_patch_vit(root / "vit-mean", steps=200, attention="sdpa", pool="mean"),
        "CNN": planted.save_patch_cnn(root / "cnn", steps=200),
    }
    return {name: explain.load(folder, device="cpu", trust_remote_code=True) for name, folder in folders.items()}


@pytest.fixture(scope="module")
def heldout() -> list[tuple[np.ndarray, str, Any]]:
    return planted.patch_images(300, seed=12345)


def test_both_models_learnt_the_planted_cause(models: dict[str, Any], heldout: list) -> None:
    for name, m in models.items():
        got = planted.learnt_patch(m, heldout)
        right, flipped = got["accuracy"], got["cover_gives_none"]
        assert right >= 0.95 and flipped >= 0.95, f"{name}: accuracy {right:.0%}, covering gives none {flipped:.0%}"


def pointed_pixel(scores: np.ndarray) -> tuple[int, int]:
    """Return the most attributed pixel; among tied maxima the one nearest their centre (as tests/test_image_planted.py)."""
    top = np.argwhere(scores >= scores.max() - 1e-6 * max(float(np.ptp(scores)), 1e-12))
    centre = top.mean(0)
    y, x = top[np.argmin(((top - centre) ** 2).sum(1))]
    return int(y), int(x)


TOLERANCE = 2  # Zhang et al.'s 15 px on 224 px inputs, on the 32 px canvas (as benchmarks/vit_pointing.py)


def hit_rate(maps: list[np.ndarray], boxes: list[tuple[int, int, int, int]]) -> float:
    """Return the fraction of maps whose most attributed pixel lies in its box grown by TOLERANCE pixels."""
    hits = []
    t = TOLERANCE
    for m, (y0, x0, y1, x1) in zip(maps, boxes):
        y, x = pointed_pixel(m)
        hits.append(y0 - t <= y < y1 + t and x0 - t <= x < x1 + t)
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def runs(models: dict[str, Any], heldout: list) -> dict[str, Any]:
    """The pointing-game images (squares every model gets right) and each model's explanations of them."""
    chosen = [(img, box) for img, label, box in heldout if box is not None
              and all(m.prepare(img, 0).record.prediction.label == "square" for m in models.values())][:N_IMAGES]
    assert len(chosen) == N_IMAGES
    images = [img for img, _ in chosen]
    out: dict[str, Any] = {"boxes": [box for _, box in chosen]}
    for name, m in models.items():
        out[name] = explain.explain(m, images, methods=["gradcam"] if name == "CNN" else ["attention", "gradcam"], seed=0)
    return out


def rates(runs: dict[str, Any], vit: str) -> dict[str, float]:
    """Return the pointing-game hit rate of each map of one ViT, and of the CNN's Grad-CAM."""
    boxes = runs["boxes"]
    attention = runs[vit].by_method("attention")
    size = attention[0].scores.shape

    def rollout_map(e: Any) -> np.ndarray:  # the rollout row drawn at the image's size, as the scores are
        grid = torch.from_numpy(e.extras["patch_rollout"])[None, None]
        return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()

    out = {
        "rollout": hit_rate([rollout_map(e) for e in attention], boxes),
        "relevance": hit_rate([e.scores for e in attention], boxes),
        "token Grad-CAM": hit_rate([e.scores for e in runs[vit].by_method("gradcam")], boxes),
        "CNN Grad-CAM": hit_rate([e.scores for e in runs["CNN"].by_method("gradcam")], boxes),
    }
    print(f"pointing game over {N_IMAGES} squares, {vit}: " + ", ".join(f"{k} {v:.0%}" for k, v in out.items()))
    return out


@pytest.mark.parametrize("vit", ["class-token ViT", "mean-pooled ViT"])
def test_pointing_game_at_least_as_good_as_the_cnns_gradcam(runs: dict[str, Any], vit: str) -> None:
    r = rates(runs, vit)
    cnn = r["CNN Grad-CAM"]
    checked = ["rollout", "relevance"] + (["token Grad-CAM"] if vit == "mean-pooled ViT" else [])
    for name in checked:
        assert r[name] >= cnn and r[name] >= 0.9, f"{vit} {name} hits {r[name]:.0%}, the CNN's Grad-CAM {cnn:.0%}"
    # a 7-9 px square covers 5-8% of the canvas: a map blind to it hits about that often
    assert r["token Grad-CAM"] >= 0.3, f"{vit} token Grad-CAM hits {r['token Grad-CAM']:.0%}: no better than chance"


@pytest.mark.xfail(strict=True, reason="token Grad-CAM on a class-token ViT hits about half the squares (46-60% over three seeds, "
                                       "benchmarks/results/vit_pointing.json); rollout and relevance are the maps to read there")
def test_token_gradcam_on_a_class_token_vit_matches_the_cnns(runs: dict[str, Any]) -> None:
    r = rates(runs, "class-token ViT")
    assert r["token Grad-CAM"] >= r["CNN Grad-CAM"]


@pytest.mark.parametrize("vit", ["class-token ViT", "mean-pooled ViT"])
def test_sanity_check_runs_and_passes_for_relevance_and_token_gradcam(models: dict[str, Any], runs: dict[str, Any], vit: str) -> None:
    from explain.metrics import evaluate

    res = runs[vit]
    some = explain.Results([e for e in res if e.input < 4], model=res.model, inputs=res.inputs, run=res.run)
    out = evaluate(models[vit], some, metrics=["sanity"])
    assert not out.run["metrics"]["errors"] and len(out) == 8
    for e in out:
        rho = e.metrics["sanity_rank_corr"]
        assert e.metrics["sanity_flag"] == 0.0 and abs(rho) < 0.5, f"{vit} {e.method} on input {e.input}: rho {rho:.2f} after randomisation"
