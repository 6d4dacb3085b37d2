"""Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391) via captum's LayerGradCam.

The gradient of the target output, averaged over a convolutional layer's feature map, weighs
that map's channels; their weighted sum (ReLU-ed, as in the paper) is upsampled bilinearly to
the input image's resolution. The layer defaults to the model's last nn.Conv2d.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adapters.base import Adapter, Example
from ..errors import MethodError
from ..explanation import Explanation, Target
from . import register
from .base import Cost, Method, setting


@dataclass(frozen=True)
class GradCamSettings:
    """Settings of Grad-CAM."""

    layer: str | None = setting(None, "dotted module name of the convolutional layer (default: the last nn.Conv2d)")
    relu: bool = setting(True, "keep only positive evidence, as the paper does (captum's own default is off)")
    output: str | None = setting(None, "what is explained: logit | probability | log-probability (default: logit, the paper's pre-softmax class score)")


def conv_layers(model: torch.nn.Module) -> list[str]:
    """Return the dotted names of the model's nn.Conv2d modules, in modules() order."""
    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]


def find_layer(model: torch.nn.Module, name: str | None) -> tuple[str, torch.nn.Module]:
    """Return (name, module): the named layer, or the last nn.Conv2d; raise MethodError if none fits."""
    convs = conv_layers(model)
    if name is None:
        if not convs:
            raise MethodError("Grad-CAM needs a convolutional layer and this model has no nn.Conv2d; use ig, shap or lime")
        name = convs[-1]
    modules = dict(model.named_modules())
    if name not in modules:
        shown = ", ".join(convs[-5:]) if convs else ", ".join(list(modules)[-5:])
        raise MethodError(f"the model has no layer {name!r}; its last convolutional layers are: {shown}")
    return name, modules[name]


@register
class GradCamMethod(Method):
    """Gradient-weighted class activation maps at the input resolution."""

    name = "gradcam"
    title = "Grad-CAM"
    families = ("image-classifier",)
    Settings = GradCamSettings
    reference = "https://arxiv.org/abs/1610.02391"

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return the Grad-CAM map upsampled to the image's H x W."""
        from captum.attr import LayerAttribution, LayerGradCam

        s: GradCamSettings = settings
        output = s.output or "logit"
        layer_name, layer = find_layer(adapter.model, s.layer)
        with Cost(adapter) as cost:
            x = adapter.pixels(example)  # type: ignore[attr-defined]  # image adapter only
            forward = adapter.target_forward(target, output)  # type: ignore[attr-defined]
            with adapter.runner.context(grad=True):
                cam = LayerGradCam(forward, layer).attribute(x, relu_attributions=s.relu)
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
