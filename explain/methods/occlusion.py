"""Occlusion (Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901) via captum's Occlusion.

A window slides over the image; each pixel's score is the mean drop of the target output over
the windows that cover it, when the window's pixels are removed the run's way (`baseline`; the
adapter's fill, by default a blurred copy of the image, so a removed patch looks like "nothing"
rather than a black square).

No self-check: every window's drop is computed exactly, nothing is sampled or truncated, so
there is no estimate to disagree with; the test against captum's Occlusion on the model itself
checks the computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..adapters.base import Adapter, Example
from ..errors import MethodError
from ..results.explanation import Explanation, Target
from .base import Cost, Method, baseline_help, setting
from .registry import register


@dataclass(frozen=True)
class OcclusionSettings:
    """Settings of occlusion."""

    window: int | None = setting(None, "side of the square window in pixels (default: 1/6 of the image's shorter side, at least 3)")
    stride: int | None = setting(None, "step between windows in pixels (default: half the window)")
    baseline: str | None = setting(None, baseline_help(("image-classifier",)).replace("how a feature is removed", "what fills the window"))
    output: str | None = setting(None, "what is explained: probability | logit | log-probability (default: probability)")


def default_window(height: int, width: int) -> int:
    """Return the default window side: 1/6 of the shorter side, at least 3 (and at most the side)."""
    side = min(height, width)
    return max(1, min(side, max(3, round(side / 6))))


@register
class OcclusionMethod(Method):
    """Sliding-window occlusion at the input resolution."""

    name = "occlusion"
    libraries = ("captum.attr",)
    title = "Occlusion"
    families = ("image-classifier",)
    Settings = OcclusionSettings
    reference = "https://arxiv.org/abs/1311.2901"

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return the mean output drop when windows over each pixel are filled."""
        from captum.attr import Occlusion

        s: OcclusionSettings = settings
        # the adapter is the one place a removal's name becomes pixels (checked, default filled in)
        name = adapter.resolve_baseline({"baseline": s.baseline}, gradient=False)  # type: ignore[attr-defined]
        output = s.output or "probability"
        x = adapter.pixels(example)  # type: ignore[attr-defined]  # image adapter only
        c, h, w = x.shape[1:]
        window = s.window or default_window(h, w)
        stride = s.stride or max(1, window // 2)
        if not 1 <= window <= min(h, w):
            raise MethodError(f"occlusion window {window} does not fit the {w}x{h} image: use 1..{min(h, w)}")
        if not 1 <= stride <= window:
            raise MethodError(f"occlusion stride {stride} must be between 1 and the window ({window})")
        with Cost(adapter) as cost:
            forward = adapter.target_forward(target, output, fast=True)  # type: ignore[attr-defined]
            with adapter.runner.context():
                attr = Occlusion(forward).attribute(
                    x,
                    sliding_window_shapes=(c, window, window),
                    strides=(c, stride, stride),
                    baselines=adapter.fill(example, name),  # type: ignore[attr-defined]
                    perturbations_per_eval=adapter.batch_rows(example),
                )
            # every channel of a pixel gets the same value (windows span all channels)
            scores = np.nan_to_num(attr[0, 0].detach().float().cpu().numpy()).astype(np.float32)
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=(),
            scores=scores,
            granularity="pixel",
            settings={**vars(s), "window": window, "stride": stride, "baseline": name, "output": output},
            checks={},
            extras={},
        )
