"""Helpers for gradient methods: input-only gradients, and the memory one gradient row needs.

Gradient methods differentiate with respect to the input (embeddings, pixels), never the
weights. With the weights' `requires_grad` switched off for the call, autograd neither saves
the activations that weight gradients would need nor computes those gradients: less memory
and time for the same attributions.

`saved_bytes_per_row` measures, with autograd's saved-tensor hooks, how many bytes one row's
forward keeps for the backward pass: the activation memory a gradient batch grows by per row.
It is exact for the model at hand (any architecture, any input size), so a memory cap can be
turned into a chunk size without guessing.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

HEADROOM = 1.5  # the backward pass's own temporaries on top of the saved activations


@contextlib.contextmanager
def frozen_parameters(model: torch.nn.Module) -> Iterator[None]:
    """Switch off requires_grad on the model's parameters for the block; restore it after."""
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def saved_bytes_per_row(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, model: torch.nn.Module) -> int:
    """Return the bytes autograd saves for backward when `forward` runs on one row of `inputs`,
    times a headroom for the backward's temporaries (parameters themselves not counted)."""
    params = {p.data_ptr() for p in model.parameters()}
    seen: set[tuple[int, int]] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = (t.data_ptr(), t.numel())
        if t.data_ptr() not in params and key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
        return t

    row = inputs[:1].detach().clone().requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward(row)
    del out
    return int(total * HEADROOM) + row.numel() * row.element_size() * 4
