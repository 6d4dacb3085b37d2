"""Feature ablation via captum's FeatureAblation: each score is f(x) - f(x without that feature).

Features are the adapter's removable units (words or tokens); a feature is removed the run's
way (`baseline`; default the adapter's: text classifiers [MASK], causal LMs end-of-text). Rows go
through the runner.

No self-check: each score is one exact difference of two model outputs, with nothing estimated
that a second estimate could contradict. Its check is the test against captum's FeatureAblation
on the model itself (tests/test_reference_perturbation.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..adapters.base import Adapter, Example
from ..results.explanation import Explanation, Target
from .registry import register
from .base import BASELINE_HELP, Cost, Method, setting, view_options


@dataclass(frozen=True)
class AblationSettings:
    """Settings of feature ablation."""

    baseline: str | None = setting(None, BASELINE_HELP)
    output: str | None = setting(None, "what is explained: probability | logit | log-probability")


@register
class AblationMethod(Method):
    """Leave-one-feature-out differences of the target output."""

    name = "ablation"
    libraries = ("captum.attr",)
    title = "Feature ablation"
    families = ("text-classifier", "causal-lm")
    Settings = AblationSettings
    reference = "https://captum.ai/api/feature_ablation.html"
    batchable = True

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return the drop in the target output when each feature alone is removed."""
        from captum.attr import FeatureAblation

        s: AblationSettings = settings
        with Cost(adapter) as cost:
            view = adapter.perturbation_view(example, target, **view_options(s, granularity))
            d = len(view.features)
            evaluate = cost.counted(view.evaluate)  # rows a cache answers count as cached_rows

            def forward(keep: torch.Tensor) -> torch.Tensor:
                return torch.as_tensor(evaluate(keep.numpy() > 0.5), dtype=torch.float32)

            attr = FeatureAblation(forward).attribute(
                torch.ones(1, d), baselines=0.0, perturbations_per_eval=max(1, min(d, adapter.runner.batch_size))
            )
            scores = view.expand(attr[0].numpy())
        return self.perturbation_result(adapter, example, target, cost, view, scores, vars(s))
