"""Read attention probabilities out of a hand-written transformer during one capture pass.

Three ways, tried in order:
- a module-name glob (`attention_probs`, e.g. "transformer.h.*.attn.attn_dropout") whose
  modules output the probabilities (B, H, T, T): a forward hook records them;
- `nn.MultiheadAttention` modules: a pre-hook asks for `need_weights=True,
  average_attn_weights=False` (the per-head weights, in the graph of the output);
- `torch.nn.functional.scaled_dot_product_attention`: answered for the pass by the exact
  reference implementation of its documentation, which keeps the weights it computes. The call
  is intercepted by a `TorchFunctionMode` (torch's public override mechanism, active in this
  thread only, however the model imported the function), never by assigning to torch's module:
  another thread's attention runs torch's own kernel meanwhile.

A replay mode serves models that answer only their last position: the prefix forwards that
give the earlier positions use slices of the full pass's probabilities (under causal attention
they are the same numbers), so every logit is in the graph of the one set of maps.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import InputError


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
    weights = torch.softmax(query @ key.transpose(-2, -1) * factor + bias, dim=-1)  # (B, H, Tq, Tk)
    return weights @ value, weights


class AttentionCapture:
    """Records (or replays) a module's attention probabilities during a forward."""

    def __init__(self, module: nn.Module, glob: str | None = None) -> None:
        self.module = module
        self.glob = glob
        self.maps: list[torch.Tensor] = []
        self.replay: list[torch.Tensor] | None = None
        self.source = ""

    def targets(self) -> list[tuple[str, nn.Module]]:
        """Return the modules whose outputs are attention probabilities (glob), or the MHA modules."""
        named = list(self.module.named_modules())
        if self.glob:
            found = [(n, m) for n, m in named if n and fnmatch.fnmatchcase(n, self.glob)]
            if not found:
                raise InputError(f"attention_probs {self.glob!r} names no module of this model")
            return found
        return [(n, m) for n, m in named if isinstance(m, nn.MultiheadAttention)]

    @contextlib.contextmanager
    def recording(self, replay: list[torch.Tensor] | None = None) -> Iterator[list[torch.Tensor]]:
        """Within the block, forwards record the attention maps (or replay slices of `replay`)."""
        self.maps, self.replay = [], replay
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
                stack.enter_context(_SdpaMode(self._sdpa))
            yield self.maps
        finally:
            for h in handles:
                h.remove()
            stack.close()
            self.replay = None

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
        if self.replay is None:
            out, weights = reference_sdpa(query, key, value, *args, **kwargs)
            self.maps.append(weights)
            return out
        _, weights = reference_sdpa(query.detach(), key.detach(), value.detach(), *args, **kwargs)
        if kwargs.get("enable_gqa"):
            value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
        return self._take(weights) @ value


class _SdpaMode(TorchFunctionMode):
    """In this thread, answers scaled_dot_product_attention with `answer`; every other torch call runs as it is."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is F.scaled_dot_product_attention:
            return self.answer(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def _ask_weights(module: nn.Module, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Make an nn.MultiheadAttention call return per-head weights in the graph of its output."""
    return args, {**kwargs, "need_weights": True, "average_attn_weights": False}
