"""Grad-CAM on vision transformers' tokens: the default layer rule, and the map against pytorch-grad-cam's recipe.

The reference is written here as pytorch-grad-cam's ViT tutorial does it, with plain hooks: the
layer's tokens (input or output) and their gradient for the target's logit, special tokens
dropped, the rest reshaped to (D, rows, cols); channel weights = the gradient's mean over the
grid; ReLU of the weighted sum, upsampled bilinearly to the image. Tolerance: 1e-5 of the map's
largest value. The rule's reason is tested too: for a head on the class token the last block's
own output tokens have no gradient, so Grad-CAM there is an all-zero map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import explain
from explain.errors import MethodError

from vit_models import GRID, HF, OWN, SPECIAL, adapter, hf_model, image, PREP

KINDS = HF + OWN + ("swin",)
# the last block's class (Swin: the last block of the last stage); its first LayerNorm is the default layer
LAST = {"vit": "ViTLayer", "deit": "DeiTLayer", "beit": "BeitLayer", "dinov2": "Dinov2Layer",
        "dinov2-registers": "Dinov2WithRegistersLayer", "swin": "SwinLayer", "own-mha": "Block", "own-sdpa-registers": "Block", "own-mean": "Block"}


@pytest.fixture(scope="module", params=KINDS)
def case(request: pytest.FixtureRequest) -> tuple[str, Any, Any]:
    m = adapter(request.param) if request.param != "swin" else explain.from_model(hf_model("swin"), preprocessing=PREP, device="cpu")
    [e] = explain.explain(m, [image()], methods=["gradcam"])
    return request.param, m, e


def last_block(kind: str, model: Any) -> str:
    """Return the name of the model's last transformer block (by its class, from the models' source)."""
    return [n for n, mod in model.named_modules() if type(mod).__name__ == LAST[kind]][-1]


def expected_layer(kind: str, model: Any) -> str:
    """Return the default layer pytorch-grad-cam's ViT recipe names: the last block's norm1 (its first LayerNorm)."""
    block = last_block(kind, model)
    return next(n for n, mod in model.named_modules() if n.startswith(block + ".") and isinstance(mod, torch.nn.LayerNorm))


def reference_cam(m: Any, layer: str, target: int, n_special: int, grid: tuple[int, int]) -> np.ndarray:
    """Grad-CAM of `layer`'s tokens by pytorch-grad-cam's recipe, with hooks written here."""
    name, at_input = layer.removesuffix(":input"), layer.endswith(":input")
    module = dict(m.model.named_modules())[name]
    kept: list[torch.Tensor] = []
    if at_input:
        handle = module.register_forward_pre_hook(lambda mod, args, kwargs: kept.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
    else:
        handle = module.register_forward_hook(lambda mod, args, out: kept.append(out if isinstance(out, torch.Tensor) else out[0]))
    x = torch.from_numpy(image()).permute(2, 0, 1)[None].float() / 255.0
    for p in m.model.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            y = m.logits(x.requires_grad_(True))[0, target]
            (g,) = torch.autograd.grad(y, kept[-1])
    finally:
        handle.remove()
        for p in m.model.parameters():
            p.requires_grad_(True)

    def reshape(t: torch.Tensor) -> torch.Tensor:  # pytorch-grad-cam's reshape_transform
        patches = t[:, n_special : n_special + grid[0] * grid[1]]
        return patches.reshape(t.shape[0], *grid, t.shape[2]).permute(0, 3, 1, 2)

    a, g = reshape(kept[-1].detach()), reshape(g)
    cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0].numpy()


def test_default_layer_rule(case: tuple[str, Any, Any]) -> None:
    kind, m, e = case
    assert e.settings["layer"] == expected_layer(kind, m.model)
    assert "attention reads, normalised by " + e.settings["layer"] in e.extras["layer_rule"]
    assert e.extras["tokens_dropped"] == SPECIAL.get(kind, [])
    assert e.extras["layer_map_size"] == list(GRID.get(kind, (8, 8)))  # Swin: 16 x 16 patches merged once


def test_map_matches_pytorch_grad_cams_recipe(case: tuple[str, Any, Any]) -> None:
    kind, m, e = case
    ref = reference_cam(m, e.settings["layer"], e.target.index, len(SPECIAL.get(kind, [])), tuple(e.extras["layer_map_size"]))
    scale = float(np.abs(ref).max())
    assert scale > 0 and e.scores.shape == image().shape[:2]
    np.testing.assert_allclose(e.scores, ref, atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize("kind", ["vit", "own-mha"])
def test_the_last_blocks_own_output_has_no_gradient(kind: str) -> None:
    """Why the rule reads what the last block reads: with a class-token head, its output's patch tokens give an empty map."""
    m = adapter(kind)
    layer = last_block(kind, m.model)
    [e] = explain.explain(m, [image()], methods=["gradcam"], gradcam={"layer": layer})
    assert e.settings["layer"] == layer and float(np.abs(e.scores).max()) == 0.0


def test_named_layers_round_trip_and_input_is_what_the_module_reads() -> None:
    m = adapter("deit")
    [auto] = explain.explain(m, [image()], methods=["gradcam"])
    [named] = explain.explain(m, [image()], methods=["gradcam"], gradcam={"layer": auto.settings["layer"]})
    np.testing.assert_array_equal(auto.scores, named.scores)
    block = last_block("deit", m.model)
    [read] = explain.explain(m, [image()], methods=["gradcam"], gradcam={"layer": block + ":input"})
    assert read.settings["layer"] == block + ":input"
    ref = reference_cam(m, block + ":input", read.target.index, 2, (4, 4))
    np.testing.assert_allclose(read.scores, ref, atol=1e-5 * float(np.abs(ref).max()), rtol=0)
    assert not np.allclose(read.scores, auto.scores)
    with pytest.raises(MethodError, match="no such module"):
        explain.explain(m, [image()], methods=["gradcam"], gradcam={"layer": "deit.nowhere:input"})


@pytest.mark.parametrize("kind", ["deit", "dinov2-registers", "own-sdpa-registers"])
def test_a_planted_wrong_reshape_is_caught(kind: str) -> None:
    """The reference must be able to fail: counting one special token too few shifts every patch by one."""
    m = adapter(kind)
    [e] = explain.explain(m, [image()], methods=["gradcam"])
    grid = tuple(e.extras["layer_map_size"])
    ref = reference_cam(m, e.settings["layer"], e.target.index, len(SPECIAL[kind]) - 1, grid)
    assert not np.allclose(e.scores, ref, atol=1e-5 * float(np.abs(ref).max()), rtol=0)
