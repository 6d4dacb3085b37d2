"""How methods read an image transformer: its attention maps in the graph of its output, its patch tokens as a grid.

- `attention_refusal`: why a model has no one global attention map (a CNN; Swin and other
  windowed-attention models, whose maps come per window, (batch x windows, heads, w^2, w^2)),
  in one line naming what to use instead;
- `attention_pass`: the per-layer maps (1, heads, T, T) and the logits, from Hugging Face's
  eager attention (output_attentions) or the capture of an own module's attention
  (explain.adapters.attention_capture);
- `token_grid`: a module's input or output tokens passed through an identity module as a
  (B, D, rows, cols) map, special tokens dropped: pytorch-grad-cam's ViT reshape_transform,
  inside the graph, so that captum's LayerGradCam can read it;
- `to_pixels`: a patch map drawn at an image's resolution.

Where the patches and special tokens are is explain.adapters.patch_tokens.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MethodError
from ..gradients import frozen_parameters
from .attention_capture import AttentionCapture
from .attention_impl import eager_attention
from .patch_tokens import WINDOWED, PatchLayout

SWIN_REFUSAL = (
    "{arch} attends within shifted windows, so it has no one global attention map to draw or roll out: "
    "use gradcam (its last stage is already a patch grid), ig, shap or lime"
)
NO_ATTENTION = (
    "{arch} computes no attention maps (a convolutional network, or attention the capture cannot see: own models need "
    "nn.MultiheadAttention, F.scaled_dot_product_attention or 'attention_probs'); use gradcam, ig, shap or lime"
)
_ATTENDS: "weakref.WeakKeyDictionary[nn.Module, dict[Any, bool]]" = weakref.WeakKeyDictionary()  # own models: did the capture see maps


def is_hf(model: Any) -> bool:
    """Return True for a transformers model (it returns attentions when asked); False for an own module."""
    return hasattr(model, "config") and hasattr(model, "set_attn_implementation")


def attention_refusal(adapter: Any) -> str | None:
    """Return why the adapter's image model has no global attention to explain (one line), or None when it has.

    Read from the architecture where it says (HF: windowed model types, configs without
    attention heads), else from one forward of a blank image with the capture on (own
    modules); the forward is not counted, as load's own probe is not.
    """
    model = adapter.model
    arch = adapter.info.architecture or type(model).__name__
    config = getattr(model, "config", None)
    if str(getattr(config, "model_type", "")) in WINDOWED:
        return SWIN_REFUSAL.format(arch=arch)
    if is_hf(model):
        return None if getattr(config, "num_attention_heads", None) else NO_ATTENTION.format(arch=arch)
    if getattr(adapter, "attention_probs", None) or any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
        return None
    key = ("attends", tuple(adapter.prep.size), int(adapter.prep.channels))
    known = _ATTENDS.setdefault(model, {})
    if key not in known:
        capture = AttentionCapture(model)
        try:
            with torch.no_grad(), capture.recording() as maps:
                adapter.logits(torch.zeros(1, adapter.prep.channels, *adapter.prep.size, device=adapter.device))
        except Exception as e:  # the capture cannot run on this model (a TorchScript program takes no hooks)
            return f"{arch}: its attention cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__}); use gradcam or ig"
        known[key] = bool(maps)
    return None if known[key] else NO_ATTENTION.format(arch=arch)


def attention_pass(adapter: Any, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Return (logits (1, C), per-layer attention (1, H, T, T)) of pixels x, the maps in the logits' graph.

    Hugging Face models run their eager attention with output_attentions; own modules are
    captured (nn.MultiheadAttention, F.scaled_dot_product_attention, or `attention_probs`).
    """
    model = adapter.model
    arch = adapter.info.architecture or type(model).__name__
    if str(getattr(getattr(model, "config", None), "model_type", "")) in WINDOWED:
        raise MethodError(SWIN_REFUSAL.format(arch=arch))
    # Gradients reach the maps through the pixels, never the weights: with the weights frozen,
    # autograd keeps nothing for them (less memory), and a tensor the model cached under
    # inference mode (BEiT's relative position index) never enters the graph.
    with torch.enable_grad(), frozen_parameters(model):
        inputs = adapter.model_input(x.detach().requires_grad_(True))
        if is_hf(model):
            try:
                with eager_attention(model):
                    out = model(inputs, output_attentions=True)
            except TypeError as e:  # a forward without output_attentions (ResNet, ConvNeXt): no maps
                if "output_attentions" not in str(e):
                    raise
                out = None
            maps = list(getattr(out, "attentions", None) or [])
            logits = getattr(out, "logits", None)
        else:
            capture = AttentionCapture(model, getattr(adapter, "attention_probs", None))
            with capture.recording() as recorded:
                logits = model(inputs)
            maps = list(recorded)
    maps = [m for m in maps if m is not None]
    if not maps or not isinstance(logits, torch.Tensor):
        raise MethodError(NO_ATTENTION.format(arch=arch))
    t = maps[0].shape[-1]
    if any(m.dim() != 4 or m.shape[0] != 1 or m.shape[-1] != t or m.shape[-2] != t for m in maps):
        shapes = sorted({tuple(m.shape) for m in maps})[:3]
        raise MethodError(
            f"{arch}'s attention is not one (1, heads, T, T) map per layer over the same tokens (it gives {shapes}: "
            "windows or stages), so there is no global map to roll out: use gradcam, ig, shap or lime"
        )
    return logits, maps


class TokenGrid(nn.Module):
    """The identity on (B, D, rows, cols): where Grad-CAM reads patch tokens as a feature map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x unchanged (hooks read it)."""
        return x


@contextlib.contextmanager
def token_grid(module: nn.Module, at_input: bool, lay: PatchLayout) -> Iterator[TokenGrid]:
    """Within the block, `module`'s input (or output) tokens pass through a TokenGrid as a (B, D, rows, cols) map.

    The tokens go in as they are and come out as the same numbers, so the model's output is
    unchanged; a hook on the TokenGrid (captum's LayerGradCam) sees the patch tokens as a map,
    special tokens dropped: pytorch-grad-cam's ViT reshape_transform, inside the graph.
    """
    grid = TokenGrid()
    n = len(lay.special)

    def through(h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        if t != lay.tokens:
            raise MethodError(f"the layer gives {t} tokens, its layout {lay.tokens}")
        patches = h[:, n:].transpose(1, 2).reshape(b, d, *lay.grid)  # (B, D, rows, cols)
        return torch.cat([h[:, :n], grid(patches).flatten(2).transpose(1, 2)], dim=1)  # (B, T, D)

    def pre(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if args and isinstance(args[0], torch.Tensor):
            return (through(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": through(kwargs["hidden_states"])}

    def post(m: nn.Module, args: Any, out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            return through(out)
        return (through(out[0]), *out[1:])

    handle = module.register_forward_pre_hook(pre, with_kwargs=True) if at_input else module.register_forward_hook(post)
    try:
        yield grid
    finally:
        handle.remove()


def to_pixels(grid_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Return (H, W) from a (rows, cols) patch map: bilinear, patch centres on their pixels (the model's resize is a plain scale)."""
    return F.interpolate(grid_map[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
