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
from typing import Any, Callable, Iterator, Sequence

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


# ---- path integrals for integrated gradients --------------------------------------------------
def trapezoid_level(points: int, level: int) -> tuple[list[float], list[float], float]:
    """Return (alphas, unit weights, scale) of the points that level `level` of the nested
    trapezoid rule adds, starting from `points` equally spaced points on [0, 1].

    Level 0 is every point j/(points-1) with weights 1/2, 1, ..., 1, 1/2; level k >= 1 adds the
    midpoints of level k-1's intervals, with weight 1. The rule after level k is `scale` times
    the weighted sum of every point of levels 0..k: doubling the intervals reuses every gradient.
    """
    intervals = (points - 1) * 2**level
    scale = 1.0 / intervals
    if level == 0:
        alphas = [j / intervals for j in range(points)]
        weights = [1.0] * points
        weights[0] = weights[-1] = 0.5
        return alphas, weights, scale
    return [(2 * j + 1) / intervals for j in range(intervals // 2)], [1.0] * (intervals // 2), scale


def trapezoid_points(points: int, level: int) -> int:
    """Return how many points the nested trapezoid rule holds after `level` doublings."""
    return (points - 1) * 2**level + 1


class PathSum:
    """Weighted sums of gradient x (input - baseline) along the straight path, evaluated through
    captum's IntegratedGradients in chunks whose size halves on out-of-memory (Runner.with_backoff).

    A chunk that runs out of memory is not counted in the runner's rows and is evaluated again,
    smaller; chunks done before it are kept, so no point is evaluated twice.
    """

    def __init__(self, ig: Any, inputs: torch.Tensor, baselines: torch.Tensor, runner: Any, chunk: int) -> None:
        self.ig, self.inputs, self.baselines, self.runner = ig, inputs, baselines, runner
        self.chunk = max(1, int(chunk))
        self.backoffs = 0

    def weighted(self, alphas: Sequence[float], weights: Sequence[float]) -> torch.Tensor:
        """Return sum_i weights[i] * grad f(baseline + alphas[i] (input - baseline)) * (input - baseline)."""
        done, total = 0, torch.zeros_like(self.inputs, dtype=torch.float32)

        def run(size: int) -> torch.Tensor:
            nonlocal done, total
            if size < self.chunk:
                self.backoffs += 1
            self.chunk = size  # later calls start from the size that fitted
            while done < len(alphas):
                end = min(done + size, len(alphas))
                rows_before = self.runner.rows
                try:
                    (part,) = self.ig._attribute(
                        inputs=(self.inputs,), baselines=(self.baselines,), n_steps=end - done,
                        step_sizes_and_alphas=(list(weights[done:end]), list(alphas[done:end])),
                    )
                except torch.OutOfMemoryError:
                    self.runner.rows = rows_before  # the failed chunk was not evaluated
                    raise
                total = total + part.detach().float()
                done = end
            return total

        with self.runner.context(grad=True):
            return self.runner.with_backoff(run, self.chunk, what="integrated gradients")
