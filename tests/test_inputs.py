"""Image inputs: one image or a batch, arrays, tensors, PIL images and paths, each read as meant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import explain
from explain.errors import InputError
from explain.images import image_inputs

from conftest import MODELS

RNG = np.random.default_rng(0)
HWC = RNG.random((32, 30, 3)).astype(np.float32)  # H=32, W=30: a transpose would show in the shape


@pytest.mark.parametrize(
    "raw, n, shape",
    [
        (HWC, 1, (32, 30, 3)),  # one (H, W, C) image, not 32 rows
        (HWC.transpose(2, 0, 1), 1, (32, 30, 3)),  # one (C, H, W) image
        (HWC[..., 0], 1, (32, 30)),  # one (H, W) image
        (np.stack([HWC] * 4), 4, (32, 30, 3)),  # NHWC batch
        (np.stack([HWC.transpose(2, 0, 1)] * 4), 4, (32, 30, 3)),  # NCHW batch
        (torch.from_numpy(np.stack([HWC.transpose(2, 0, 1)] * 2)), 2, (32, 30, 3)),  # NCHW tensor
        (torch.from_numpy(HWC.transpose(2, 0, 1)), 1, (32, 30, 3)),  # CHW tensor
        ([HWC, torch.from_numpy(HWC.transpose(2, 0, 1)), HWC[None]], 3, (32, 30, 3)),  # a list; (1, H, W, C) is one
    ],
)
def test_arrays_and_tensors(raw: object, n: int, shape: tuple[int, ...]) -> None:
    items = image_inputs(raw)
    assert len(items) == n
    for item in items:
        assert isinstance(item, np.ndarray) and item.shape == shape
        np.testing.assert_array_equal(item[..., 0] if item.ndim == 3 else item, HWC[..., 0])


def test_single_pil_image_and_path(tmp_path: Path) -> None:
    img = Image.fromarray((HWC * 255).astype(np.uint8))
    assert image_inputs(img) == [img]
    assert image_inputs(str(tmp_path / "a.png")) == [str(tmp_path / "a.png")]
    assert image_inputs(tmp_path / "a.png") == [tmp_path / "a.png"]


@pytest.mark.parametrize(
    "raw, message",
    [
        (np.zeros((3, 30, 4)), r"shape \(3, 30, 4\) is ambiguous"),
        (np.zeros((2, 3, 30, 3)), r"batch of shape \(2, 3, 30, 3\) is ambiguous"),
        (np.zeros((32, 30, 7)), r"shape \(32, 30, 7\) has no channel axis"),
        (np.zeros((2, 2, 32, 30, 3)), r"shape \(2, 2, 32, 30, 3\) is not understood"),
        ([np.zeros((2, 32, 30, 3))], r"input 0: an image array of shape \(2, 32, 30, 3\) in a list"),
    ],
)
def test_shapes_that_cannot_be_read_name_the_shape(raw: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        image_inputs(raw)
    assert "H, W, C)" in str(info.value)  # says what is accepted (or how to fix it)


@pytest.fixture(scope="module")
def digits() -> Any:
    path = MODELS / "digits-cnn"
    if not (path / "config.json").exists():
        pytest.skip("bundled digits-cnn missing")
    return explain.load(path, device="cpu")


def test_engine_reads_one_image_and_batches(digits: object) -> None:
    gray = RNG.random((32, 32)).astype(np.float32)
    one = explain.explain(digits, gray, methods=["gradcam"])
    assert len(one.inputs) == 1 and not one.failures
    batch = torch.from_numpy(np.stack([gray[None]] * 3))  # (3, 1, 32, 32) NCHW tensor
    many = explain.explain(digits, batch, methods=["gradcam"])
    assert [r.index for r in many.inputs] == [0, 1, 2] and not many.failures
    np.testing.assert_allclose(many[0].scores, one[0].scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="ambiguous"):
        explain.explain(digits, np.zeros((3, 32, 3), dtype=np.float32), methods=["gradcam"])
