"""Find a CNN's last spatial feature map (Grad-CAM's default layer) by tracing one forward.

The layer Grad-CAM should read is the one whose output the classifier head pools: the last
(B, C, H, W) map with H, W > 1 the forward computes. Registration order does not say which
that is (ConvNeXt registers a depthwise conv in the middle of its last block last), so this
runs one forward with a hook on every submodule and reads what each one returned, in the
order they finished. Rules:

- a candidate returns a 4-D tensor with H, W > 1 and is called exactly once (a module reused
  at several depths, such as torchvision's shared ReLU in a block, has no single map);
- adaptive pooling layers are the head's, not features (torchvision's VGG resizes to 7 x 7
  with AdaptiveAvgPool2d before its classifier: that map only repeats the features' pixels);
- a map whose output later becomes a token sequence is not what the head pools: when any
  module returns a 3-D (B, N, D) tensor after the last candidate finished, there is no pooled
  spatial map (ViT, DeiT, BEiT: the patch embedding's conv is the only 4-D map and the head
  reads the [CLS] token; Swin likewise). A map computed after a token stage (MobileViT folds
  its tokens back into a map that it pools) still counts;
- the last candidate to finish wins. A container finishes after its children, so of the
  modules that return the same map the outermost is named (torchvision ResNet's "layer4",
  HF ResNet's "resnet.encoder.stages.1", VGG's "features"); Grad-CAM of that map is the same.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

HEAD_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class MapRecord:
    """One module's output during the traced forward."""

    name: str
    shape: tuple[int, ...]
    calls: int
    order: int  # when the module finished its (last) call, 0 first


_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], list[MapRecord]]]" = weakref.WeakKeyDictionary()


def trace_outputs(model: nn.Module, run: Callable[[], Any]) -> list[MapRecord]:
    """Return every submodule's tensor output shape and call count from one call of `run`, in finishing order."""
    seen: dict[str, MapRecord] = {}
    counter = [0]

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls = seen[name].calls + 1 if name in seen else 1
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
            seen[name] = MapRecord(name, shape, calls, counter[0])
            counter[0] += 1

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return sorted(seen.values(), key=lambda r: r.order)


def spatial_maps(model: nn.Module, run: Callable[[], Any], key: tuple[Any, ...] = ()) -> list[MapRecord]:
    """Return the candidate feature maps (see the module docstring), last to finish last.

    Traced once per model and `key` (e.g. the input shape): the architecture, not the weights,
    decides which module returns what.
    """
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        modules = dict(model.named_modules())
        trace = trace_outputs(model, run)
        maps = [
            r
            for r in trace
            if len(r.shape) == 4 and r.shape[2] > 1 and r.shape[3] > 1 and r.calls == 1
            and not isinstance(modules.get(r.name), HEAD_POOLS)
        ]
        if maps and any(len(r.shape) == 3 and r.order > maps[-1].order for r in trace):
            maps = []  # the maps became a token sequence: the head pools tokens, not a map
        per_model[key] = maps
    return per_model[key]


def is_traced(model: nn.Module, key: tuple[Any, ...] = ()) -> bool:
    """Return True when `spatial_maps` has this model and key traced already (no forward to pay)."""
    return key in _CACHE.get(model, {})


def last_feature_map(model: nn.Module, run: Callable[[], Any], key: tuple[Any, ...] = ()) -> str | None:
    """Return the dotted name of the module that returns the last spatial feature map, or None."""
    maps = spatial_maps(model, run, key)
    return maps[-1].name if maps else None
