"""An inference-only copy of a CNN for the perturbation methods' many forwards.

Perturbation methods (SHAP, LIME, occlusion, ablation, the metrics' curves) run thousands of
gradient-free forwards of one image's variants, so most of their time is convolution. For
those rows alone we use a copy of the model with each BatchNorm folded into the convolution
before it (torch.fx's `fuse`, exact up to float rounding in eval mode) and weights and inputs in
channels-last layout, which oneDNN's CPU convolutions and cuDNN run faster (benchmarks/speed.py
measures the gain on the bundled CNN; the README quotes its figure). The copy is checked against the model on the
example's own pixels and dropped in favour of the model itself if they disagree or if the
model cannot be traced; gradient methods always use the model itself.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch

MAX_PARAMETERS = 200_000_000  # above this a second copy costs too much memory: use the model
RTOL = 1e-3


def fast_copy(model: torch.nn.Module, probe: torch.Tensor) -> torch.nn.Module | None:
    """Return an eval-mode, BatchNorm-folded, channels-last copy of `model` that agrees with it
    on `probe` (a (B, C, H, W) batch it will see), or None when that cannot be had."""
    if sum(p.numel() for p in model.parameters()) > MAX_PARAMETERS or model.training:
        return None
    if not any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules()):
        return None
    fast: torch.nn.Module
    try:
        from torch.fx.experimental.optimization import fuse

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = fuse(model, inplace=False)
        _relu_in_place(fast)
    except Exception:  # not symbolically traceable (data-dependent control flow, HF wrappers)
        fast = copy.deepcopy(model)
    try:
        fast = fast.to(memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
        with torch.inference_mode():
            want = _logits(model(probe))
            got = _logits(fast(probe.contiguous(memory_format=torch.channels_last)))
    except Exception:
        return None
    if got.shape != want.shape or not torch.allclose(got.float(), want.float(), rtol=RTOL, atol=RTOL * float(want.abs().max()) + 1e-6):
        return None
    return fast


def _relu_in_place(graph_module: torch.nn.Module) -> None:
    """Let each ReLU of the traced copy overwrite its input where nothing else reads that input."""
    graph = getattr(graph_module, "graph", None)
    if graph is None:
        return
    modules = dict(graph_module.named_modules())
    safe: dict[str, bool] = {}  # a ReLU module called in several places must be safe in all
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), torch.nn.ReLU):
            source = node.args[0] if node.args else None
            ok = isinstance(source, torch.fx.Node) and len(source.users) == 1 and source.op != "placeholder"
            safe[node.target] = safe.get(node.target, True) and ok
    for name, ok in safe.items():
        if ok:
            modules[name].inplace = True


def weights_key(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Return what identifies the model's current weights: each parameter's and buffer's
    identity and in-place version counter (any change to a weight changes the key)."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def _logits(out: Any) -> torch.Tensor:
    return getattr(out, "logits", out)
