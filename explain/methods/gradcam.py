"""Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391) via captum's LayerGradCam.

The gradient of the target output, averaged over a convolutional layer's feature map, weighs
that map's channels; their weighted sum (ReLU-ed, as in the paper) is upsampled bilinearly to
the input image's resolution. The layer defaults to the module returning the last spatial
feature map before the head's pooling, found by tracing one forward
(explain.adapters.feature_map): HF ResNet's last stage, ConvNeXt's last stage (not the
depthwise conv registered last), VGG's `features`, the bundled SmallCNN's `features`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adapters.base import Adapter, Example
from ..adapters.feature_map import is_traced, spatial_maps
from ..errors import MethodError
from ..results.explanation import Explanation, Target
from .registry import register
from .base import Cost, Method, setting


@dataclass(frozen=True)
class GradCamSettings:
    """Settings of Grad-CAM."""

    layer: str | None = setting(None, "dotted module name of the layer (default: the module returning the last spatial feature map before global pooling)")
    relu: bool = setting(True, "keep only positive evidence, as the paper does (captum's own default is off)")
    output: str | None = setting(None, "what is explained: logit | probability | log-probability (default: logit, the paper's pre-softmax class score)")


def find_layer(adapter: Adapter, x: torch.Tensor, name: str | None) -> tuple[str, torch.nn.Module]:
    """Return (name, module): the named layer, or the one returning the last spatial feature map.

    Raise MethodError when the name is not a module of the model, or when no module returns a
    (batch, channels, height, width) map and no name was given.
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
        if not maps:
            raise MethodError(
                "Grad-CAM needs a spatial feature map (batch, channels, height, width) that the head pools and this "
                "model computes none (a ViT-style model pools tokens); use ig, shap or lime, or name one with gradcam.layer"
            )
        name = maps[-1].name
    if name not in modules or not name:
        shown = ", ".join(r.name for r in maps[-5:]) if maps else ", ".join(list(modules)[-5:])
        raise MethodError(f"the model has no layer {name!r}; its last spatial feature maps are: {shown}")
    return name, modules[name]


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
        from captum.attr import LayerAttribution, LayerGradCam

        s: GradCamSettings = settings
        output = s.output or "logit"
        with Cost(adapter) as cost:
            x = adapter.pixels(example)  # type: ignore[attr-defined]  # image adapter only
            layer_name, layer = find_layer(adapter, x, s.layer)
            forward = adapter.target_forward(target, output)  # type: ignore[attr-defined]

            def attribute(rows: int) -> torch.Tensor:
                # one image per call, so an out-of-memory error fails this input alone (the
                # runner's one-line message) and the run goes on with the next
                with adapter.runner.context(grad=True):
                    return LayerGradCam(forward, layer).attribute(x, relu_attributions=s.relu)

            cam = adapter.runner.with_backoff(attribute, 1, what="Grad-CAM")
            if isinstance(cam, tuple) or cam.dim() != 4:
                shape = tuple(cam[0].shape if isinstance(cam, tuple) else cam.shape)
                raise MethodError(
                    f"layer {layer_name!r} gives a map of shape {shape}; Grad-CAM needs a convolutional "
                    "feature map (batch, channels, height, width): choose a conv layer"
                )
            small = tuple(cam.shape[-2:])
            scores = LayerAttribution.interpolate(cam.detach().float(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
            scores = scores[0, 0].cpu().numpy().astype(np.float32)
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=(),
            scores=scores,
            granularity="pixel",
            settings={**vars(s), "layer": layer_name, "output": output},
            checks={},
            extras={"layer_map_size": list(small)},
        )
