"""Attention weights on demand: SDPA and flash attention return none, so switch to eager briefly.

Also a scoped hook that keeps the logits of the attention pass, so that a causal LM's
whole-continuation output can be split into its per-token log-probabilities in the same graph.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Run the block with the model's eager attention (which returns weights), then restore it."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    switch = current not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(current)


@contextlib.contextmanager
def recording_logits(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, append the logits of each top-level forward of `model` (in its graph).

    A Hugging Face output's `.logits`, or the output itself when it is a tensor; outputs of any
    other kind are skipped. The hook is removed when the block ends, error or not.
    """
    kept: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        logits = getattr(output, "logits", output)
        if isinstance(logits, torch.Tensor):
            kept.append(logits)

    handle = model.register_forward_hook(hook)
    try:
        yield kept
    finally:
        handle.remove()
