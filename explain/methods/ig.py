"""Integrated gradients (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365) via captum.

Integrates gradients from a baseline to the input over the adapter's differentiable input
(text: word embeddings, as captum's LayerIntegratedGradients on the embedding layer;
images: pixels). Completeness: the scores sum to f(input) - f(baseline), computed directly
from two forward rows, up to the convergence delta; the `completeness` self-check fails when
that gap exceeds 1% of the output change (or 1e-4, whichever is larger).

Adaptive (the default): a nested trapezoid rule. The first try holds `n_steps` equally spaced
points; each refinement adds only the midpoints of the current intervals, so every gradient
already computed is reused and an input that finishes with N points costs N gradient rows.
A confident classifier's output turns sharply along the path, and 50 points can miss much of
the change. With fixed steps (adaptive off) the default rule is captum's Gauss-Legendre.
`method=trapezoid` is this nested rule (weights 1/(n-1), ends halved: they sum to 1);
`method=riemann_trapezoid` is captum's rule of that name as captum computes it (weights 1/n,
ends halved, on the same points: they sum to (n-1)/n, so its scores are ours x (n-1)/n and
its completeness gap is about |f(x) - f(baseline)|/n). `settings["method"]` records the rule used.

What completeness can show: adaptive, the check is the loop's own stopping rule, so it fails
only where the loop stopped at `max_steps` (a path the rule cannot integrate within the budget);
it still compares the scores with f(x) - f(baseline) computed directly from two forward rows.
With fixed steps it fails whenever the rule missed the change.

Noise tunnel (nt_samples > 0): SmoothGrad over IG, with captum's noise (same seed, same draws
as captum's NoiseTunnel). Each noisy sample x_s is integrated from the baseline until its own
gap |sum(attr_s) - (f(x_s) - f(baseline))| is within the tolerance, and the check passes only
when every sample's gap is (`worst_sample_delta`): one bad sample cannot hide in the average.
`convergence_delta` is the mean of the gaps (captum's figure), and the tolerance is relative to
the true f(x) - f(baseline). The averaged scores sum to the mean change over the noisy inputs
(`noisy_output_change`), not to f(x) - f(baseline): that difference is the noise's own effect,
not an integration error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..adapters.base import Adapter, Example
from ..errors import MethodError
from ..results.explanation import Explanation, SelfCheck, Target
from ..gradients import PathSum, frozen_parameters, saved_bytes_per_row, trapezoid_level, trapezoid_points
from .registry import register
from .base import BASELINE_HELP, Cost, Method, setting, view_options

CAPTUM_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


@dataclass(frozen=True)
class IGSettings:
    """Settings of integrated gradients."""

    n_steps: int = setting(50, "integration points (the first try, when adaptive)")
    adaptive: bool = setting(True, "refine (adding midpoints, every earlier gradient reused) until the scores sum to f(x) - f(baseline) within 1% of it, or 1e-4")
    max_steps: int = setting(4096, "adaptive: the most integration points")
    method: str = setting("auto", "integration rule: auto (adaptive: trapezoid; fixed: gausslegendre), trapezoid (nested, weights sum to 1), or captum's gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid (captum's weights sum to (n-1)/n; adaptive then restarts at each try)")
    baseline: str | None = setting(None, BASELINE_HELP + "; IG also takes zero (zero embedding vectors) and cannot drop words")
    internal_batch_size: int | None = setting(None, "rows per forward/backward pass (default: the runner's batch size; halves on out-of-memory)")
    output: str | None = setting(None, "what is explained: probability | logit | log-probability (default: probability; causal LMs: log-probability)")
    nt_samples: int = setting(0, "SmoothGrad noise-tunnel samples (0 = off)")
    nt_stdev: float = setting(0.1, "noise-tunnel standard deviation, in input units")


REL_TOL, ABS_TOL = 0.01, 1e-4


def tolerance(change: float) -> float:
    """Return the completeness tolerance: 1% of |f(x) - f(baseline)|, or 1e-4 when that is larger.

    The absolute floor matters when f(x) and f(baseline) are nearly equal: a relative gap of
    a tiny change says nothing about the attributions.
    """
    return max(REL_TOL * abs(change), ABS_TOL)


def converged(checks: dict[str, float]) -> bool:
    """Return True when every sample's gap (the worst one) is within the tolerance of the output change."""
    return checks.get("worst_sample_delta", checks["convergence_delta"]) <= tolerance(checks["output_change"])


def rule_for(settings: IGSettings) -> str:
    """Return the integration rule the settings ask for ("trapezoid" or a captum rule name)."""
    rule = settings.method
    if rule == "auto":
        return "trapezoid" if settings.adaptive else "gausslegendre"
    if rule != "trapezoid" and rule not in CAPTUM_RULES:
        raise MethodError(f"unknown IG method {rule!r}: use auto, trapezoid, {', '.join(CAPTUM_RULES)}")
    return rule


def integrate(path: PathSum, change: float, rule: str, settings: IGSettings, tol: float) -> tuple[torch.Tensor, int]:
    """Return (attributions, points used) of one input, refined until |sum - change| <= tol when adaptive."""
    steps, level = settings.n_steps, 0
    if rule == "trapezoid":
        alphas, weights, scale = trapezoid_level(steps, 0)
        acc = path.weighted(alphas, weights)
        while True:
            attr = acc * scale
            done = abs(float(attr.sum()) - change) <= tol
            if not settings.adaptive or done or trapezoid_points(steps, level + 1) > settings.max_steps:
                return attr, trapezoid_points(steps, level)
            level += 1
            alphas, weights, scale = trapezoid_level(steps, level)
            acc = acc + path.weighted(alphas, weights)  # the new midpoints only
    from captum.attr._utils.approximation_methods import approximation_parameters

    sizes, points = approximation_parameters(rule)
    while True:  # a captum rule whose points do not nest: each try starts afresh
        attr = path.weighted(points(steps), sizes(steps))
        done = abs(float(attr.sum()) - change) <= tol
        if not settings.adaptive or done or steps * 2 > settings.max_steps:
            return attr, steps
        steps *= 2


def noisy_inputs(inputs: torch.Tensor, samples: int, stdev: float, seed: int) -> torch.Tensor:
    """Return `samples` noisy copies of `inputs` (1, ...), drawn as captum's NoiseTunnel draws
    them after torch.manual_seed(seed), on the CPU and without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        noise = torch.normal(0, torch.tensor(stdev).repeat((samples, *inputs.shape[1:])))
    return inputs.repeat_interleave(samples, dim=0) + noise.to(inputs.device, inputs.dtype)


def completeness_check(checks: dict[str, float], sums: tuple[float, float], steps: int, samples: int) -> SelfCheck:
    """Return the completeness verdict: the gap between the attributions' sum and the output change.

    With a noise tunnel the verdict is the worst sample's own gap (`worst_sample_delta`), never
    their mean. `sums` is (sum of the attributions over every input position, sum of the
    features' scores); they differ only where positions that are not features (e.g. special
    tokens) moved.
    """
    change, tol = checks["output_change"], tolerance(checks["output_change"])
    gap = checks.get("worst_sample_delta", checks["convergence_delta"])
    passed = gap <= tol
    off = f"{_share(gap / abs(change))} of f(x) - f(baseline) = {change:.3g}" if abs(change) > 1e-12 else f"{gap:.2g}"
    floor = f" (under the floor of {ABS_TOL:g}: the output change is tiny)" if tol > REL_TOL * abs(change) else ""
    attr_sum, scores_sum = sums
    if not samples:
        if passed:
            return SelfCheck("completeness", True, gap, tol, f"IG is complete: the scores add up to the output change within {off}{floor}.")
        return SelfCheck("completeness", False, gap, tol,
                         f"IG is NOT complete: the scores add up to {attr_sum:.3g}, off by {off}, after {steps} steps; the scores are unreliable.")
    rest = (f" The word scores hold {scores_sum:.3g} of it; the rest fell on positions that are not features (the noise moves them too)."
            if abs(attr_sum - scores_sum) > tol else "")
    mean = (f" Averaged over the samples the attributions sum to {attr_sum:.3g}, the mean output change over the noisy inputs "
            f"({checks['noisy_output_change']:.3g}), not f(x) - f(baseline): that difference is the noise's, not an integration error.{rest}")
    if passed:
        return SelfCheck("completeness", True, gap, tol,
                         f"IG is complete on each of its {samples} noisy samples: the worst sample's scores add up to its own output change within {off}{floor}.{mean}")
    bad = int(checks.get("incomplete_samples", 1))
    return SelfCheck("completeness", False, gap, tol,
                     f"IG is NOT complete on {bad} of its {samples} noisy samples: the worst sample's scores miss its own output change by {off} "
                     f"after {steps} steps; the scores are unreliable.{mean}")


def _uncounted(runner: Any, forward: Any, x: torch.Tensor) -> torch.Tensor:
    """Return forward(x) with the rows it counts taken back: Runner.map counts the rows it ran itself."""
    before = runner.rows
    try:
        return forward(x).detach()
    finally:
        runner.rows = before


def _share(r: float) -> str:
    return f"{100 * r:.2g}%" if 100 * r < 10 else f"{100 * r:.0f}%"


@register
class IntegratedGradientsMethod(Method):
    """Integrated gradients over the adapter's gradient view."""

    name = "ig"
    libraries = ("captum.attr",)
    title = "Integrated gradients"
    families = ("text-classifier", "causal-lm", "image-classifier")
    Settings = IGSettings
    reference = "https://arxiv.org/abs/1703.01365"

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return IG scores, with the convergence delta in checks and the completeness self-check."""
        from captum.attr import IntegratedGradients

        s: IGSettings = settings
        rule = rule_for(s)
        if s.n_steps < 2:
            raise MethodError(f"IG needs n_steps >= 2 (got {s.n_steps})")
        if s.adaptive and s.max_steps < s.n_steps:  # max_steps caps the refinement only
            raise MethodError(f"adaptive IG needs n_steps <= max_steps (got n_steps={s.n_steps}, max_steps={s.max_steps})")
        opts = view_options(s, granularity)
        runner = adapter.runner
        # Input-only gradients: the weights' own gradients (and the activations they need) are
        # never wanted here.
        with Cost(adapter) as cost, frozen_parameters(adapter.model):
            view = adapter.gradient_view(example, target, **opts)
            ig = IntegratedGradients(view.forward)
            chunk = s.internal_batch_size or adapter.batch_rows(example)
            capped = runner.max_memory is not None and not s.internal_batch_size
            if capped:
                chunk = runner.rows_within(saved_bytes_per_row(view.forward, view.inputs, adapter.model), chunk)
            starts = noisy_inputs(view.inputs, s.nt_samples, s.nt_stdev, seed) if s.nt_samples > 0 else view.inputs
            # f(input), f(baseline) (and f of each noisy input) directly, in chunks that halve on out-of-memory
            ends = runner.map([view.inputs, view.baselines, *(starts.split(1) if s.nt_samples > 0 else [])],
                              lambda batch: _uncounted(runner, view.forward, torch.cat(batch)), batch_size=chunk)
            change = float(ends[0] - ends[1])
            tol = tolerance(change)
            changes = (ends[2:] - ends[1]).tolist() if s.nt_samples > 0 else [change]
            attrs, gaps, steps = [], [], 0
            path: PathSum | None = None
            for x, c in zip(starts.split(1), changes):
                path = PathSum(ig, x, view.baselines, runner, path.chunk if path else chunk)
                attr, used_steps = integrate(path, c, rule, s, tol)
                attrs.append(attr)
                gaps.append(abs(float(attr.sum()) - c))
                steps = max(steps, used_steps)
            attr = torch.stack(attrs).mean(0)
            scores = view.reduce(attr)
        gap = sum(gaps) / len(gaps)
        checks = {"convergence_delta": gap, "delta_relative": gap / abs(change) if abs(change) > 1e-12 else 0.0, "output_change": change}
        if s.nt_samples > 0:
            checks["noisy_output_change"] = sum(changes) / len(changes)
            checks["worst_sample_delta"] = max(gaps)  # the verdict's figure: each sample must be complete
            checks["incomplete_samples"] = float(sum(g > tol for g in gaps))
        checks["converged"] = float(converged(checks))
        verdict = completeness_check(checks, (float(attr.sum()), float(scores.sum())), steps, s.nt_samples)
        backed_off = path is not None and path.chunk < chunk
        used = {**vars(s), **({"internal_batch_size": path.chunk if path else chunk} if capped or backed_off else {}),
                "n_steps": steps, "method": rule, "baseline": view.baseline, "output": view.output}
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
            self_checks=(verdict,),
        )
