"""Integrated gradients (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365) via captum.

Integrates gradients from a baseline to the input over the adapter's differentiable input
(text: word embeddings, as captum's LayerIntegratedGradients on the embedding layer;
images: pixels). Completeness: the scores sum to f(input) - f(baseline) up to the reported
convergence delta. By default the step count grows (from 50, x4 while far off, else x2, up to 4096) until that delta
is within 1% of f(input) - f(baseline): a confident classifier's output turns sharply along
the path, and 50 steps can miss most of the change. Optional SmoothGrad-style noise tunnel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..adapters.base import Adapter, Example
from ..explanation import Explanation, Target
from ..gradients import frozen_parameters, saved_bytes_per_row
from . import register
from .base import Cost, Method, setting, view_options


@dataclass(frozen=True)
class IGSettings:
    """Settings of integrated gradients."""

    n_steps: int = setting(50, "integration steps (the first try, when adaptive)")
    adaptive: bool = setting(True, "double n_steps until the convergence delta is within tolerance (1% of the output change, or 1e-4)")
    max_steps: int = setting(4096, "adaptive: the most integration steps tried")
    method: str = setting("gausslegendre", "captum integration rule (gausslegendre, riemann_trapezoid, ...)")
    baseline: str | None = setting(None, "text: pad | mask | zero (default pad); causal LMs: eos | zero | pad (default eos); images: black | blur | noise (default black)")
    internal_batch_size: int | None = setting(None, "rows per forward/backward pass (default: the runner's batch size)")
    output: str | None = setting(None, "what is explained: probability | logit | log-probability (default: probability; causal LMs: log-probability)")
    nt_samples: int = setting(0, "SmoothGrad noise-tunnel samples (0 = off)")
    nt_stdev: float = setting(0.1, "noise-tunnel standard deviation, in input units")


REL_TOL, ABS_TOL = 0.01, 1e-4


def converged(checks: dict[str, float]) -> bool:
    """Return True when the completeness gap is within 1% of the output change or under 1e-4.

    The absolute floor matters when f(x) and f(baseline) are nearly equal: a relative gap of
    a tiny change says nothing about the attributions.
    """
    return checks["convergence_delta"] <= max(REL_TOL * abs(checks["output_change"]), ABS_TOL)


def _checks(attr: torch.Tensor, change: float, delta_v: float | None = None) -> dict[str, float]:
    """Completeness of `attr` against f(x) - f(baseline) = `change` (captum's convergence delta;
    `delta_v` when captum measured it, e.g. as the mean over a noise tunnel's samples)."""
    if delta_v is None:
        delta_v = abs(float(attr.detach().float().sum()) - change)
    return {
        "convergence_delta": delta_v,
        "delta_relative": delta_v / abs(change) if abs(change) > 1e-12 else 0.0,
        "output_change": change,
    }


@register
class IntegratedGradientsMethod(Method):
    """Integrated gradients over the adapter's gradient view."""

    name = "ig"
    title = "Integrated gradients"
    families = ("text-classifier", "causal-lm", "image-classifier")
    Settings = IGSettings
    reference = "https://arxiv.org/abs/1703.01365"

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return IG scores with the convergence delta in checks."""
        from captum.attr import IntegratedGradients, NoiseTunnel

        s: IGSettings = settings
        opts = view_options(s, granularity)
        # Input-only gradients: the weights' own gradients (and the activations they need) are
        # never wanted here.
        with Cost(adapter) as cost, frozen_parameters(adapter.model):
            view = adapter.gradient_view(example, target, **opts)
            ig = IntegratedGradients(view.forward)
            chunk = s.internal_batch_size or adapter.batch_rows(example)
            capped = adapter.runner.max_memory is not None and not s.internal_batch_size
            if capped:
                chunk = adapter.runner.rows_within(saved_bytes_per_row(view.forward, view.inputs, adapter.model), chunk)
            # f(input) and f(baseline) once, in one call, for every try of the adaptive loop
            with adapter.runner.context():
                ends = view.forward(torch.cat([view.inputs, view.baselines])).detach().float()
            change = float(ends[0] - ends[1])
            steps = s.n_steps
            while True:
                kwargs = dict(baselines=view.baselines, n_steps=steps, method=s.method, internal_batch_size=chunk)
                with adapter.runner.context(grad=True):
                    if s.nt_samples > 0:
                        torch.manual_seed(seed)
                        attr, delta = NoiseTunnel(ig).attribute(
                            view.inputs, nt_type="smoothgrad", nt_samples=s.nt_samples, stdevs=s.nt_stdev,
                            return_convergence_delta=True, **kwargs,
                        )
                        d = delta.detach().float()
                        checks = _checks(attr, float(attr.detach().float().sum()) - float(d.mean()), float(d.abs().mean()))
                    else:
                        attr = ig.attribute(view.inputs, **kwargs)
                        checks = _checks(attr, change)
                if not s.adaptive or converged(checks) or steps * 2 > s.max_steps:
                    break
                # A saturated model turns sharply along the path: integrate finer, in bigger
                # strides while the gap is still far (> 10x) from the tolerance.
                far = checks["convergence_delta"] > 10 * max(REL_TOL * abs(checks["output_change"]), ABS_TOL)
                steps = min(steps * (4 if far else 2), s.max_steps)
            scores = view.reduce(attr)
        checks["converged"] = float(converged(checks))
        used = {**vars(s), **({"internal_batch_size": chunk} if capped else {}), "n_steps": steps, "baseline": view.baseline, "output": view.output}
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=view.features,
            scores=scores,
            granularity=view.granularity,
            settings=used,
            checks=checks,
            extras=view.extras,
        )
