"""Read attention probabilities out of a hand-written transformer during one capture pass.

Four ways, tried in order:
- a module-name glob (`attention_probs`, e.g. "transformer.h.*.attn.attn_dropout") whose
  modules output the probabilities (B, H, T, T): a forward hook records them;
- `nn.MultiheadAttention` modules: a pre-hook asks for `need_weights=True,
  average_attn_weights=False` (the per-head weights, in the graph of the output);
- `torch.nn.functional.scaled_dot_product_attention`: answered for the pass by the exact
  reference implementation of its documentation, which keeps the weights it computes;
- an inline softmax (`F.softmax(wei, dim=-1)`, `torch.softmax`, `wei.softmax(-1)`, as
  nanoGPT's manual path and the "Head" class of popular lectures write attention): the
  square (..., T, T) softmaxes over the last axis are the maps. One (B, H, T, T) call is a
  layer; (B, T, T) calls of single heads are grouped into a layer by the module that ran them
  (heads in one ModuleList: "blocks.0.sa.heads.0", ".1", ... make layer "blocks.0.sa.heads").
  Grouped heads are stacked into a leaf tensor and a second pass adds `leaf - leaf.detach()`
  (zero) to each head's output, so the layer's map is in the graph of the output and its
  gradient is the one each head's output receives.
Both calls are intercepted by a `TorchFunctionMode` (torch's public override mechanism, active
in this thread only, however the model imported the function), never by assigning to torch's
modules: another thread's attention and softmax run torch's own kernels meanwhile.

A replay mode serves models that answer only their last position: the prefix forwards that
give the earlier positions use slices of the full pass's probabilities (under causal attention
they are the same numbers), so every logit is in the graph of the one set of maps.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import re
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import InputError

# The softmax the reference SDPA uses, taken before any capture pass patches torch.softmax.
_SOFTMAX = torch.softmax
_HEAD_INDEX = re.compile(r"\.\d+$")  # "blocks.0.sa.heads.1" -> its layer "blocks.0.sa.heads"


def reference_sdpa(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (output, weights) of scaled dot-product attention, as PyTorch's documentation defines it (no dropout)."""
    n_q, n_k = query.size(-2), key.size(-2)
    factor = 1 / math.sqrt(query.size(-1)) if scale is None else scale
    bias = torch.zeros(n_q, n_k, dtype=query.dtype, device=query.device)
    if is_causal:
        allowed = torch.ones(n_q, n_k, dtype=torch.bool, device=query.device).tril(diagonal=0)
        bias = bias.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        bias = bias.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else bias + attn_mask
    if enable_gqa:
        key = key.repeat_interleave(query.size(-3) // key.size(-3), -3)
        value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
    weights = _SOFTMAX(query @ key.transpose(-2, -1) * factor + bias, dim=-1)  # (B, H, Tq, Tk)
    return weights @ value, weights


class AttentionCapture:
    """Records (or replays) a module's attention probabilities during a forward."""

    def __init__(self, module: nn.Module, glob: str | None = None) -> None:
        self.module = module
        self.glob = glob
        self.maps: list[torch.Tensor] = []
        self.replay: list[torch.Tensor] | None = None
        self.source = ""
        self.calls: list[tuple[str, torch.Tensor]] = []  # inline softmax: (module name, map) per call
        self._merge: list[tuple[torch.Tensor, int] | None] | None = None  # per call: (layer leaf, head)
        self._stack: list[str] = []  # names of the modules whose forward is running
        self._replay_calls = False

    def targets(self) -> list[tuple[str, nn.Module]]:
        """Return the modules whose outputs are attention probabilities (glob), or the MHA modules."""
        named = list(self.module.named_modules())
        if self.glob:
            found = [(n, m) for n, m in named if n and fnmatch.fnmatchcase(n, self.glob)]
            if not found:
                raise InputError(f"attention_probs {self.glob!r} names no module of this model")
            return found
        return [(n, m) for n, m in named if isinstance(m, nn.MultiheadAttention)]

    def run(self, forward: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return (forward(), the per-layer maps (B, H, T, T) in the graph of its output).

        Single-head softmax maps are stacked per layer: a second pass puts the stacked map in
        the output's graph (see the module docstring).
        """
        with self.recording() as maps:
            out = forward()
        if self.source != "softmax" or all(a.dim() == 4 for _, a in self.calls):
            return out, list(maps)
        leaves = [m.detach().requires_grad_(True) for m in maps]
        plan: list[tuple[torch.Tensor, int] | None] = []
        for layer, head in self._layout():
            plan.append((leaves[layer], head) if head >= 0 else None)
        self._merge = plan
        try:
            with self.recording():
                out = forward()
        finally:
            self._merge = None
        # the 4-D calls of the second pass are in its graph; grouped heads answer through their leaves
        layers = _group(self.calls)
        maps_out = [leaves[i] if layers[i][1] else self.calls[layers[i][0][0]][1] for i in range(len(layers))]
        return out, maps_out

    def replayable(self) -> list[torch.Tensor]:
        """Return what a replay pass cuts its maps from: the layers, or (inline softmax) every call."""
        return [a for _, a in self.calls] if self.source == "softmax" else list(self.maps)

    @contextlib.contextmanager
    def recording(self, replay: list[torch.Tensor] | None = None) -> Iterator[list[torch.Tensor]]:
        """Within the block, forwards record the attention maps (or replay slices of `replay`)."""
        # a replay of inline-softmax maps goes call by call; any other, layer by layer
        self._replay_calls = replay is not None and self.source == "softmax"
        self.maps, self.replay, self.calls = [], replay, []
        handles: list[Any] = []
        targets = self.targets()
        stack = contextlib.ExitStack()
        try:
            if self.glob:
                self.source = "glob"
                handles = [m.register_forward_hook(self._glob_hook) for _, m in targets]
            elif targets:
                self.source = "mha"
                for _, m in targets:
                    handles.append(m.register_forward_pre_hook(_ask_weights, with_kwargs=True))
                    handles.append(m.register_forward_hook(self._mha_hook, with_kwargs=True))
            else:
                self.source = "sdpa"
                stack.enter_context(_CaptureMode(self._sdpa, self._soft))
                for name, m in self.module.named_modules():
                    handles.append(m.register_forward_pre_hook(self._enter(name)))
                    handles.append(m.register_forward_hook(self._leave))
            yield self.maps
        finally:
            for h in handles:
                h.remove()
            stack.close()
            self.replay, self._stack = None, []
        if self.source == "sdpa" and not self.maps and self.calls:
            self.source = "softmax"
            self.maps[:] = [_layer(self.calls, members) for members, _ in _group(self.calls)]

    def _enter(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any) -> None:
            self._stack.append(name)

        return hook

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._stack:
            self._stack.pop()

    def _soft(self, out: torch.Tensor) -> torch.Tensor:
        """Record one inline-softmax map (or return its replayed / merged form)."""
        i = len(self.calls)
        if self.replay is not None and not self._replay_calls:
            return out  # replaying the layers of another source: a softmax is not one of them
        if self.replay is not None:
            if i >= len(self.replay):
                raise InputError("the model computed more attention maps in a prefix forward than in the full one")
            out = self.replay[i][..., : out.shape[-2], : out.shape[-1]]
        elif self._merge is not None and i < len(self._merge) and self._merge[i] is not None:
            leaf, head = self._merge[i]  # type: ignore[misc]
            part = leaf[:, head]
            out = out + (part - part.detach())  # the same numbers; the leaf now in the output's graph
        self.calls.append((self._stack[-1] if self._stack else "", out))
        return out

    def _layout(self) -> list[tuple[int, int]]:
        """Return (layer, head within a grouped layer or -1) of each recorded inline-softmax call."""
        where: list[tuple[int, int]] = [(0, -1)] * len(self.calls)
        for layer, (members, grouped) in enumerate(_group(self.calls)):
            for h, i in enumerate(members):
                where[i] = (layer, h if grouped else -1)
        return where

    def _take(self, computed: torch.Tensor) -> torch.Tensor:
        """Record `computed`, or return the replayed map of the same layer cut to its size."""
        if self.replay is None:
            self.maps.append(computed)
            return computed
        layer = len(self.maps)
        if layer >= len(self.replay):
            raise InputError("the model computed more attention maps in a prefix forward than in the full one")
        t_q, t_k = computed.shape[-2], computed.shape[-1]
        cut = self.replay[layer][..., :t_q, :t_k]
        self.maps.append(cut)
        return cut

    def _glob_hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise InputError(f"attention_probs {self.glob!r}: a module returned {shape}, not probabilities (B, heads, T, T)")
        return self._take(output)

    def _mha_hook(self, module: nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        """Return the layer's output recomputed from the weights it returns, so they are in its graph.

        nn.MultiheadAttention returns a view of its weights taken after they were used, which
        no gradient reaches: out_proj(weights @ value projection) is the same output (up to
        rounding) with the returned weights in its graph.
        """
        weights = output[1]
        if weights is None:
            return None
        if self.replay is not None:
            raise InputError("attention of a last-position-only model through nn.MultiheadAttention cannot be replayed")
        assert isinstance(module, nn.MultiheadAttention)
        if module.bias_v is not None or module.add_zero_attn:
            raise InputError("attention capture supports nn.MultiheadAttention without add_bias_kv / add_zero_attn")
        value = kwargs["value"] if "value" in kwargs else args[2]
        if not module.batch_first:
            value = value.transpose(0, 1)  # (B, S, E)
        e, h = module.embed_dim, module.num_heads
        w_v = module.in_proj_weight[2 * e :] if module.in_proj_weight is not None else module.v_proj_weight
        b_v = module.in_proj_bias[2 * e :] if module.in_proj_bias is not None else None
        b, s = value.shape[:2]
        v = F.linear(value, w_v, b_v).view(b, s, h, -1).transpose(1, 2)  # (B, H, S, hd)
        weights = weights if weights.dim() == 4 else weights.unsqueeze(1)
        out = module.out_proj((weights @ v).transpose(1, 2).reshape(b, weights.shape[-2], -1))  # (B, T, E)
        if not module.batch_first:
            out = out.transpose(0, 1)
        self.maps.append(weights)
        return out, weights

    def _sdpa(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.replay is None or self._replay_calls:
            out, weights = reference_sdpa(query, key, value, *args, **kwargs)
            self.maps.append(weights)
            return out
        _, weights = reference_sdpa(query.detach(), key.detach(), value.detach(), *args, **kwargs)
        if kwargs.get("enable_gqa"):
            value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
        return self._take(weights) @ value


# Every spelling of a softmax an attention layer may use (F.softmax calls Tensor.softmax inside:
# the mode is off while its handler runs, so one call is seen once).
_SOFTMAXES = (F.softmax, torch.softmax, torch.Tensor.softmax)


class _CaptureMode(TorchFunctionMode):
    """In this thread, answers scaled_dot_product_attention with `sdpa` and hands square softmaxes
    over the last axis to `soft`; every other torch call runs as it is."""

    def __init__(self, sdpa: Any, soft: Any) -> None:
        super().__init__()
        self.sdpa, self.soft = sdpa, soft

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return self.sdpa(*args, **kwargs)
        out = func(*args, **kwargs)
        if func in _SOFTMAXES and isinstance(out, torch.Tensor) and out.dim() >= 3 and out.shape[-1] == out.shape[-2]:
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            if dim in (-1, out.dim() - 1):
                return self.soft(out)
        return out


def _ask_weights(module: nn.Module, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Make an nn.MultiheadAttention call return per-head weights in the graph of its output."""
    return args, {**kwargs, "need_weights": True, "average_attn_weights": False}


def _group(calls: list[tuple[str, torch.Tensor]]) -> list[tuple[list[int], bool]]:
    """Return the layers of inline-softmax calls: (call indices, True when single heads were grouped).

    A (B, H, T, T) call is a layer. Consecutive (B, T, T) calls by modules of one ModuleList
    (names equal once a trailing index is cut) are the heads of one layer.
    """
    layers: list[tuple[list[int], bool]] = []
    key = None
    for i, (name, a) in enumerate(calls):
        if a.dim() != 3:
            layers.append(([i], False))
            key = None
            continue
        k = (_HEAD_INDEX.sub("", name), tuple(a.shape))
        if key == k and layers and layers[-1][1]:
            layers[-1][0].append(i)
        else:
            layers.append(([i], True))
        key = k
    return layers


def _layer(calls: list[tuple[str, torch.Tensor]], members: list[int]) -> torch.Tensor:
    """Return one layer's (B, H, T, T) map from its calls: a 4-D call as it is, single heads stacked."""
    first = calls[members[0]][1]
    if first.dim() != 3:
        return first if first.dim() == 4 else first.reshape(first.shape[0], -1, *first.shape[-2:])
    return torch.stack([calls[i][1] for i in members], dim=1)
