"""SHAP values (Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874) via shap's Partition explainer.

shap computes Owen values over the adapter's removable features and its feature hierarchy
(text: neighbouring words merge first, as in shap's text masker; images: neighbouring
regions). The masker hands shap's masks straight to the adapter, which scores the perturbed
inputs as token ids or pixel batches through the one batched runner: nothing is turned into
strings and re-tokenised. Efficiency (scores sum to f(x) - base value) holds by construction,
so it checks nothing: `checks` keeps the base value and output as figures, and the self-check
is *stability*: the values at half the budget must agree with the full run's on the top
features. The half-budget run is the full run cut short (a prefix of its rows, which the memo
answers), so the check measures convergence, not independent variance (see stability.py).
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Any

import numpy as np

from ..adapters.base import Adapter, Example, PerturbationView
from ..results.explanation import Explanation, Target
from .registry import register
from . import budget, stability
from .base import BASELINE_HELP, Cost, Method, setting, view_options
from .shap_kernels import explainer_class, supported


@dataclass(frozen=True)
class ShapSettings:
    """Settings of the SHAP partition explainer."""

    max_evals: int | None = setting(None, "model evaluations (default: 500, or 2*d+1 if the input has many features); adaptive: the cap")
    adaptive: bool = setting(True, "evaluate in rounds (32, 48, 64, 96, 128, ... evaluations, every row scored once) and stop when the top features and their signs have settled and the stability statistic passes, or at max_evals")
    batch_size: int = setting(64, "masks shap hands over per call (the runner re-batches them)")
    baseline: str | None = setting(None, BASELINE_HELP)
    segmentation: str | None = setting(None, "images: how regions are made (slic | quickshift | grid; default: chosen for the image size)")
    n_segments: int | None = setting(None, "images: about how many regions (default: chosen for the image size)")
    output: str | None = setting(None, "what is explained: probability | logit | log-probability (default: probability; causal LMs: log-probability)")
    check: bool = setting(True, "stability self-check (convergence): re-estimate at half the budget from rows already scored (no extra model rows) and compare the top features with the full run's")


def _masker(view: PerturbationView) -> Any:
    """A shap masker whose 'masked input' is the keep-mask itself, evaluated by the adapter."""
    import shap

    class KeepMaskMasker(shap.maskers.Masker):
        def __init__(self) -> None:
            self.shape = (1, len(view.features))
            self.clustering = view.clustering

        def __call__(self, mask: np.ndarray, *args: Any) -> tuple[np.ndarray]:
            return (np.asarray(mask, dtype=bool).reshape(1, -1),)

    return KeepMaskMasker()


_global_stream = threading.Lock()  # shap as installed draws its tie-breaks from numpy's global stream


def partition(model: Any, view: PerturbationView, max_evals: int, batch_size: int, seed: int) -> tuple[np.ndarray, float, bool]:
    """Return (Owen values, base value, exact) from shap's Partition explainer over the view's features.

    shap breaks ties between equally urgent clusters with numpy's random stream. On our kernels
    (shap_kernels) the explainer's own view of numpy draws from a RandomState seeded with
    `seed` for this call, so a run is repeatable, inputs explained side by side in threads do
    not disturb each other, and numpy's global stream is never touched. With shap as installed
    (an untested shap version) the global stream is seeded for the call and restored after,
    one call at a time (SHAP is then not batchable: see ShapMethod.batchable). Call it again with
    a larger `max_evals` and the same `seed` (and a memoising `model`) to grow an estimate: the
    first rows asked are the same. `exact` is True when the whole hierarchy was expanded within
    the budget (then the values are the exact Owen values of this hierarchy and mask).
    """
    import shap

    d = len(view.features)
    ours = explainer_class(np.random.RandomState(seed % 2**32))  # the stream np.random.seed(seed) gives
    if ours is not None:
        explainer = ours(model, _masker(view))
        out = explainer(np.zeros((1, d)), max_evals=max_evals, batch_size=batch_size, silent=True)
    else:
        with _global_stream:
            state = np.random.get_state()
            np.random.seed(seed % 2**32)
            try:
                explainer = shap.explainers.Partition(model, _masker(view))
                out = explainer(np.zeros((1, d)), max_evals=max_evals, batch_size=batch_size, silent=True)
            finally:
                np.random.set_state(state)
    # shap spends max_evals - 2 on the tree; a run the budget cut short ends at or past that
    exact = int(getattr(explainer, "last_eval_count", max_evals)) < max_evals - 2
    return np.asarray(out.values[0], dtype=np.float64), float(np.ravel(out.base_values)[0]), exact


@register
class ShapMethod(Method):
    """SHAP (Owen) values from shap's Partition explainer."""

    name = "shap"
    libraries = ("shap",)
    title = "SHAP (partition)"
    families = ("text-classifier", "causal-lm", "image-classifier")
    Settings = ShapSettings
    reference = "https://arxiv.org/abs/1705.07874"

    @property
    def batchable(self) -> bool:  # type: ignore[override]
        """True on our kernels (a per-call tie-break stream); shap as installed reads numpy's global one."""
        return supported()

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return SHAP values with the base value in checks and the stability self-check."""
        s: ShapSettings = settings
        opts = view_options(s, granularity)
        self_checks = []
        with Cost(adapter) as cost:
            view = adapter.perturbation_view(example, target, **opts)
            d = len(view.features)
            max_evals = s.max_evals or max(500, 2 * d + 1)
            evaluate = cost.counted(view.evaluate, remember=True)  # shap asks for f(x) twice; the check and rounds re-ask their rows
            grown: budget.Grown | None = None
            if d == 1:  # shap needs two features for a hierarchy; one feature's value is exact
                full, empty = evaluate(np.array([[True], [False]]))
                values, base, exact = np.array([full - empty]), float(empty), True
                fx = float(full)
            else:
                if s.adaptive:  # rounds that re-ask their earlier rows from the memo (budget.py)
                    grown = budget.grow_shap(lambda b: partition(evaluate, view, b, s.batch_size, seed), max_evals, lambda: adapter.runner.rows)
                    values, base, exact, max_evals = grown.kept.values, grown.kept.payload, grown.kept.exact, grown.used
                else:
                    values, base, exact = partition(evaluate, view, max_evals, s.batch_size, seed)
                fx = float(evaluate(np.ones((1, d), dtype=bool))[0])
            checks = {"base_value": base, "output": fx, "efficiency_gap": abs(float(values.sum()) - (fx - base))}
            if s.check:
                if exact:
                    check = stability.exact(f"every cluster of the {d} features was expanded within {max_evals} evaluations")
                    checks["noise_floor"] = 0.0
                else:
                    # the half-budget values: an adaptive run's own (a round, or its stopping check), else
                    # a run asking for a prefix of the full run's rows, answered by the memo (no model rows)
                    h = max(4, max_evals // 2)
                    half = grown.values_at[h] if grown is not None and h in grown.values_at else partition(evaluate, view, h, s.batch_size, seed)[0]
                    check = stability.stability(values, half, f"the values at {max_evals} and at {h} evaluations", first=True)
                    # How far a value still moved between half and full budget: a score within it is the estimate's noise.
                    checks["noise_floor"] = stability.noise_floor(values, half)
                checks["stability"] = check.value
                self_checks.append(check if grown is None else grown.annotate(check))
            scores = view.expand(values)
            if grown is not None:
                view.extras = {**view.extras, "budget": grown.record()}
        settings_used = {**vars(s), "max_evals": max_evals if grown is None else grown.cap}  # adaptive: the cap; extras.budget.used
        return self.perturbation_result(adapter, example, target, cost, view, scores, settings_used, checks, self_checks)
