"""Grad-CAM's default layer is the last spatial feature map before global pooling, on real architectures.

Models built here from configs (no download): HF ResNet, HF ConvNeXt, a torchvision-style VGG
(features Sequential + AdaptiveAvgPool2d(7) + classifier), and the bundled SmallCNN. Each
Grad-CAM map is compared with captum's LayerGradCam called directly on the same layer and
with a Grad-CAM written here from the paper (channel weights = spatial mean of the gradient,
ReLU of the weighted sum, bilinear upsampling). Tolerance: 1e-5 of the map's largest value.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explain
from explain.adapters.feature_map import spatial_maps
from explain.errors import MethodError

from conftest import MODELS

REL = 1e-5
RECORD: dict[str, Any] = {"errors": "record"} if "errors" in inspect.signature(explain.explain).parameters else {}
PREP = {"size": 64, "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


class TinyVGG(nn.Module):
    """torchvision's VGG layout, small: conv/ReLU blocks with max pools, AdaptiveAvgPool2d(7), an MLP head."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(16 * 49, 32), nn.ReLU(True), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def build(kind: str) -> Any:
    """Return an adapter for one architecture, with the name of the module whose input is the pooled map."""
    import transformers

    torch.manual_seed(0)
    labels: dict[str, Any] = {"id2label": {0: "cat", 1: "dog", 2: "bird"}, "label2id": {"cat": 0, "dog": 1, "bird": 2}}
    if kind == "digits":
        path = MODELS / "digits-cnn"
        if not (path / "model.safetensors").exists():
            pytest.skip("bundled model examples/models/digits-cnn is missing")
        return explain.load(path, device="cpu")
    if kind == "resnet":
        cfg = transformers.ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **labels)
        model: Any = transformers.ResNetForImageClassification(cfg)
    elif kind == "convnext":
        cfg = transformers.ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 2], **labels)
        model = transformers.ConvNextForImageClassification(cfg)
    else:
        model = TinyVGG()
    return explain.from_model(model.eval(), preprocessing=PREP, device="cpu", **({"labels": ["cat", "dog", "bird"]} if kind == "vgg" else {}))


EXPECTED = {
    "digits": ("features", "pool"),  # (default layer, module whose input is the map the head pools)
    "resnet": ("resnet.encoder.stages.1", "resnet.pooler"),
    "convnext": ("convnext.encoder.stages.1", None),  # ConvNeXt pools with a tensor mean, no module
    "vgg": ("features", "avgpool"),
}


@pytest.fixture(scope="module", params=list(EXPECTED))
def case(request: pytest.FixtureRequest) -> tuple[str, Any]:
    return request.param, build(request.param)


def image(channels: int, h: int = 48, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(3)
    img = (rng.random((h, w, channels)) * 255).astype(np.uint8)
    img[10:30, 8:24] = 250  # a bright block, so the classes' maps differ
    return img[..., 0] if channels == 1 else img


def manual_gradcam(model: Any, layer: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM from the paper with plain hooks: ReLU(sum_c mean_hw(dy/dA_c) A_c), upsampled bilinearly."""
    kept: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, i, o: kept.append(o))
    try:
        with torch.enable_grad():
            y = model.logits(x)[0, target]
            (g,) = torch.autograd.grad(y, kept[-1])
    finally:
        handle.remove()
    a = kept[-1].detach()
    cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0].numpy()


def assert_close(actual: np.ndarray, ref: np.ndarray) -> None:
    scale = float(np.abs(ref).max())
    assert scale > 0
    np.testing.assert_allclose(actual, ref, atol=REL * scale, rtol=0)


def test_default_layer_is_the_map_the_head_pools(case: tuple[str, Any]) -> None:
    from captum.attr import LayerAttribution, LayerGradCam

    kind, m = case
    img = image(m.prep.channels)
    [e] = explain.explain(m, [img], methods=["gradcam"])
    name, pool = EXPECTED[kind]
    assert e.settings["layer"] == name
    modules = dict(m.model.named_modules())
    layer = modules[name]
    x = m.prepare(img, 0).state.pixels
    # the chosen layer's output is exactly what the head pools (ConvNeXt: the encoder's last
    # hidden state, which its model averages over height and width)
    seen: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_hook(lambda mod, i, o: seen.__setitem__("map", o))]
    if pool:
        hooks.append(modules[pool].register_forward_hook(lambda mod, i, o: seen.__setitem__("pooled", i[0])))
    else:
        hooks.append(modules["convnext.encoder"].register_forward_hook(lambda mod, i, o: seen.__setitem__("pooled", o.last_hidden_state)))
    try:
        with torch.no_grad():
            m.logits(x)
    finally:
        for h in hooks:
            h.remove()
    assert torch.equal(seen["map"], seen["pooled"])
    # equal to captum called directly on that layer, and to Grad-CAM written from the paper
    cam = LayerGradCam(lambda p: m.logits(p), layer).attribute(x, target=e.target.index, relu_attributions=True)
    ref = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")[0, 0].detach().numpy()
    assert_close(e.scores, ref)
    assert_close(e.scores, manual_gradcam(m, layer, x, e.target.index))
    assert e.extras["layer_map_size"] == list(seen["map"].shape[-2:])


def test_the_last_registered_conv_is_not_the_default() -> None:
    """What the old rule (last nn.Conv2d in registration order) picked, and why it was wrong."""
    m = build("convnext")
    convs = [n for n, mod in m.model.named_modules() if isinstance(mod, nn.Conv2d)]
    assert convs[-1].endswith("dwconv")  # a depthwise conv inside the last block, before its MLP
    [e] = explain.explain(m, [image(3)], methods=["gradcam"])
    assert e.settings["layer"] != convs[-1]
    vgg = build("vgg")
    names = [r.name for r in spatial_maps(vgg.model, lambda: vgg.logits(torch.rand(1, 3, 64, 64)), ("input", (64, 64), 3))]
    assert "avgpool" not in names and names[-1] == "features"  # the head's 7 x 7 resize is no feature map


def test_layer_setting_overrides_from_the_api_and_the_cli() -> None:
    from explain.cli.commands import parse_settings

    m = build("resnet")
    args = argparse.Namespace(set=["gradcam.layer=resnet.encoder.stages.0"], ig_steps=None, shap_max_evals=None, lime_samples=None)
    settings = parse_settings(args)
    assert settings == {"gradcam": {"layer": "resnet.encoder.stages.0"}}
    [e] = explain.explain(m, [image(3)], methods=["gradcam"], **settings)
    assert e.settings["layer"] == "resnet.encoder.stages.0" and e.extras["layer_map_size"] == [16, 16]
    [d] = explain.explain(m, [image(3)], methods=["gradcam"])
    assert d.extras["layer_map_size"] == [8, 8] and not np.allclose(d.scores, e.scores)


def test_a_model_without_spatial_maps_says_so() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    m = explain.from_model(mlp, preprocessing={**PREP, "size": 16}, labels=["a", "b", "c"], device="cpu")
    res = explain.explain(m, [image(3)], methods=["gradcam"], **RECORD)
    assert not list(res) and "needs a spatial feature map" in res.failures[0].error


def test_out_of_memory_fails_that_image_alone_and_leaves_no_hook() -> None:
    m = build("vgg")
    calls = {"n": 0}

    def oom_once(module: nn.Module, args: Any, output: Any) -> None:
        if torch.is_grad_enabled():  # Grad-CAM's pass, not the prediction or the trace
            calls["n"] += 1
            if calls["n"] == 1:
                raise torch.OutOfMemoryError("injected")

    handle = m.model.features.register_forward_hook(oom_once)
    try:
        res = explain.explain(m, [image(3), image(3, 40, 48)], methods=["gradcam"], **RECORD)
    finally:
        handle.remove()
    assert [e.input for e in res] == [1] and calls["n"] == 2
    [failure] = res.failures
    assert failure.input == 0 and "out of memory in Grad-CAM" in failure.error
    assert all(not mod._forward_hooks and not mod._backward_hooks for mod in m.model.modules())


def test_no_spatial_map_without_a_name_is_a_method_error() -> None:
    from explain.methods.gradcam import find_layer

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    m = explain.from_model(mlp, preprocessing={**PREP, "size": 16}, labels=["a", "b", "c"], device="cpu")
    with pytest.raises(MethodError, match="needs a spatial feature map"):
        find_layer(m, torch.rand(1, 3, 16, 16), None)


def vit(kind: str = "vit") -> Any:
    """A tiny HF ViT (or DeiT) from a config: its only 4-D map is the patch embedding's conv; the head reads [CLS]."""
    import transformers

    torch.manual_seed(0)
    shape = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=32, num_labels=3)
    if kind == "deit":
        model: Any = transformers.DeiTForImageClassification(transformers.DeiTConfig(**shape))
    else:
        model = transformers.ViTForImageClassification(transformers.ViTConfig(**shape))
    return explain.from_model(model.eval(), preprocessing={**PREP, "size": 32}, device="cpu")


@pytest.mark.parametrize("kind", ["vit", "deit"])
def test_a_vit_has_no_pooled_map_so_its_tokens_are_read(kind: str) -> None:
    """The patch projection's map becomes the token sequence, which is not what the head pools: Grad-CAM reads the
    patch tokens the last block's attention reads instead (tests/test_vit_gradcam.py checks those maps)."""
    m = vit(kind)
    [e] = explain.explain(m, [image(3, 32, 32)], methods=["gradcam"])
    assert e.settings["layer"].endswith(".layernorm_before") and "projection" not in e.settings["layer"]
    assert e.extras["layer_map_size"] == [4, 4] and "attention reads" in e.extras["layer_rule"]


def test_a_vit_layer_named_explicitly_still_runs() -> None:
    m = vit()
    layer = f"{m.model.base_model_prefix}.embeddings.patch_embeddings.projection"
    [e] = explain.explain(m, [image(3, 32, 32)], methods=["gradcam"], gradcam={"layer": layer})
    assert e.settings["layer"] == layer and e.extras["layer_map_size"] == [4, 4] and e.scores.shape == (32, 32)
