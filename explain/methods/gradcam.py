"""Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391) via captum's LayerGradCam.

The gradient of the target output, averaged over a convolutional layer's feature map, weighs
that map's channels; their weighted sum (ReLU-ed, as in the paper) is upsampled bilinearly to
the input image's resolution. The layer defaults to the module returning the last spatial
feature map before the head's pooling, found by tracing one forward
(explain.adapters.feature_map): HF ResNet's last stage, ConvNeXt's last stage (not the
depthwise conv registered last), VGG's `features`, the bundled SmallCNN's `features`.

Vision transformers compute no such map: their patch tokens are one, once the special tokens
are dropped and the rest is reshaped to the patch grid (pytorch-grad-cam's ViT recipe; the
reshape runs inside the graph, explain.adapters.patch_views.token_grid). The default layer is
the recipe's `blocks[-1].norm1`: the tokens the last block's attention reads, after the
normalisation a pre-norm block applies first (ViT's `layernorm_before`, Dinov2's `norm1`, Swin's
last block of its last stage, already a grid); a block without one gives its input
(`NAME:input`). Not the last block's output: with a head on a class token its patch outputs
never reach the head (gradient 0, an empty map; tested), and the tokens a mean-pooled head pools
have by then been mixed by every attention layer. Not the un-normalised residual stream: its
per-token offsets swamp Grad-CAM's channel weights (on the planted-patch task's mean-pooled
ViT, one seed, measured while choosing this layer: the last block's raw input pointed at the
square in none of 30 images, its normalised input in all). How well token Grad-CAM points
across seeds: benchmarks/vit_pointing.py.

`gradcam.layer` names any module; `NAME:input` takes what it reads instead of what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adapters.base import NO_GRADIENT, Adapter, Example
from ..adapters.feature_map import is_traced, spatial_maps
from ..adapters.patch_tokens import PatchLayout, last_block, layout
from ..adapters.patch_views import token_grid
from ..errors import MethodError
from ..gradients import frozen_parameters
from ..results.explanation import Explanation, Target
from .registry import register
from .base import Cost, Method, setting

INPUT = ":input"  # a layer name's suffix: the module's input, not its output


@dataclass(frozen=True)
class GradCamSettings:
    """Settings of Grad-CAM."""

    layer: str | None = setting(
        None,
        "dotted module name of the layer, NAME:input for what it reads (default: the last spatial feature map before "
        "global pooling; vision transformers: the last block, see docs/methods.md)",
    )
    relu: bool = setting(True, "keep only positive evidence, as the paper does (captum's own default is off)")
    output: str | None = setting(None, "what is explained: logit | probability | log-probability (default: logit, the paper's pre-softmax class score)")


@dataclass(frozen=True)
class Layer:
    """Where Grad-CAM reads: a module's output (or input), as a map or as patch tokens."""

    name: str  # as recorded in settings, NAME or NAME:input
    module: torch.nn.Module
    at_input: bool
    tokens: PatchLayout | None  # the patch tokens' layout; None for a (B, C, H, W) map
    rule: str  # why this layer (the default's rule, or "named")


def find_layer(adapter: Adapter, x: torch.Tensor, name: str | None) -> Layer:
    """Return the named layer, or the default one (see the module docstring).

    Raise MethodError when the name is not a module of the model, or when the model computes
    neither a spatial feature map nor patch tokens and no name was given.
    """
    model = adapter.model
    prep = getattr(adapter, "prep", None)
    key = ("input", tuple(getattr(prep, "size", x.shape[-2:])), int(x.shape[1]))
    traced = is_traced(model, key)
    maps = spatial_maps(model, lambda: adapter.logits(x), key)  # type: ignore[attr-defined]  # image adapter only
    if not traced:
        adapter.runner.count(1)
    modules = dict(model.named_modules())
    if name is None:
        if maps:
            return Layer(maps[-1].name, modules[maps[-1].name], False, None, "the last spatial feature map before global pooling")
        block, norm = last_block(adapter)
        lay = layout(adapter, block.tokens)
        why = (f"the patch tokens the last block's attention reads, {'normalised by ' + norm if norm else 'its input'} "
               f"(pytorch-grad-cam's ViT recipe); the head reads the {lay.rule}")
        if norm is not None:
            return Layer(norm, modules[norm], False, lay, why)
        return Layer(block.name + INPUT, modules[block.name], True, lay, why)
    at_input = name.endswith(INPUT)
    base = name.removesuffix(INPUT)
    if base not in modules or not base:
        shown = ", ".join(r.name for r in maps[-5:]) if maps else ", ".join(list(modules)[-5:])
        raise MethodError(f"the model has no layer {base!r}; its last spatial feature maps are: {shown}")
    shape = _shape_at(adapter, modules[base], at_input, x)
    return Layer(name, modules[base], at_input, layout(adapter, shape[1]) if len(shape) == 3 else None, "named")


def _shape_at(adapter: Adapter, module: torch.nn.Module, at_input: bool, x: torch.Tensor) -> tuple[int, ...]:
    """Return the shape of the tensor `module` reads (at_input) or returns, from one forward."""
    seen: list[tuple[int, ...]] = []

    def pre(m: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        t = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        seen.append(tuple(t.shape) if t is not None else ())

    def post(m: torch.nn.Module, args: Any, out: Any) -> None:
        t = out if isinstance(out, torch.Tensor) else (out[0] if isinstance(out, (tuple, list)) and out else None)
        seen.append(tuple(t.shape) if isinstance(t, torch.Tensor) else ())

    handle = module.register_forward_pre_hook(pre, with_kwargs=True) if at_input else module.register_forward_hook(post)
    try:
        with torch.no_grad():
            adapter.logits(x)  # type: ignore[attr-defined]  # image adapter only
        adapter.runner.count(1)
    finally:
        handle.remove()
    return seen[-1] if seen else ()


@register
class GradCamMethod(Method):
    """Gradient-weighted class activation maps at the input resolution."""

    name = "gradcam"
    libraries = ("captum.attr",)
    title = "Grad-CAM"
    families = ("image-classifier",)
    Settings = GradCamSettings
    reference = "https://arxiv.org/abs/1610.02391"
    score_units = "other"  # gradient-weighted activations, not output units

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return the Grad-CAM map upsampled to the image's H x W."""
        from captum.attr import LayerGradCam

        s: GradCamSettings = settings
        output = s.output or "logit"
        with Cost(adapter) as cost:
            x = adapter.pixels(example)  # type: ignore[attr-defined]  # image adapter only
            layer = find_layer(adapter, x, s.layer)
            forward = adapter.target_forward(target, output)  # type: ignore[attr-defined]

            def attribute(rows: int) -> torch.Tensor:
                # one image per call, so an out-of-memory error fails this input alone (the
                # runner's one-line message) and the run goes on with the next
                with adapter.runner.context(grad=True):
                    if layer.tokens is None:
                        return LayerGradCam(forward, layer.module).attribute(
                            x, relu_attributions=s.relu, attribute_to_layer_input=layer.at_input
                        )
                    # patch tokens as a (B, D, rows, cols) map; gradients reach it through the
                    # pixels with the weights frozen (see patch_views.attention_pass)
                    with token_grid(layer.module, layer.at_input, layer.tokens) as grid, frozen_parameters(adapter.model):
                        return LayerGradCam(forward, grid).attribute(x.detach().requires_grad_(True), relu_attributions=s.relu)

            try:
                cam = adapter.runner.with_backoff(attribute, 1, what="Grad-CAM")
            except RuntimeError as e:  # autograd's words for a layer computed outside the graph
                if "used in the graph" not in str(e) and "does not require grad" not in str(e):
                    raise
                raise MethodError(f"Grad-CAM needs the gradient at layer {layer.name!r}, and {NO_GRADIENT}") from e
            if isinstance(cam, tuple) or cam.dim() != 4:
                shape = tuple(cam[0].shape if isinstance(cam, tuple) else cam.shape)
                raise MethodError(
                    f"layer {layer.name!r} gives a map of shape {shape}; Grad-CAM needs a convolutional "
                    "feature map (batch, channels, height, width) or transformer tokens (batch, tokens, width): choose another layer"
                )
            small = tuple(cam.shape[-2:])
            # the map covers the model's window: placed there on the image (0 outside a crop)
            scores = adapter.window_to_image(example, cam[0, 0])  # type: ignore[attr-defined]
            extras: dict[str, Any] = {"layer_map_size": list(small), "layer_rule": layer.rule}
            if layer.tokens is not None:
                extras.update(
                    tokens_dropped=list(layer.tokens.special),
                    patch_size=[round(v, 3) for v in layer.tokens.patch],
                    answer_rule=layer.tokens.rule,
                )
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=(),
            scores=scores,
            granularity="pixel",
            settings={**vars(s), "layer": layer.name, "output": output},
            checks={},
            extras=extras,
        )
