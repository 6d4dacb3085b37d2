"""SHAP values (Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874) via shap's Partition explainer.

shap computes Owen values over the adapter's removable features and its feature hierarchy
(text: neighbouring words merge first, as in shap's text masker; images: neighbouring
regions). The masker hands shap's masks straight to the adapter, which scores the perturbed
inputs as token ids or pixel batches through the one batched runner: nothing is turned into
strings and re-tokenised. Efficiency: scores sum to f(x) - base value.
"""

from __future__ import annotations

from dataclasses import dataclass
import atexit
import threading
from typing import Any

import numpy as np

from ..adapters.base import Adapter, Example, PerturbationView
from ..explanation import Explanation, Target
from . import register
from .base import Cost, Method, setting, view_options


@dataclass(frozen=True)
class ShapSettings:
    """Settings of the SHAP partition explainer."""

    max_evals: int | None = setting(None, "model evaluations (default: 500, or 2*d+1 more if the input has many features)")
    batch_size: int = setting(64, "masks shap hands over per call (the runner re-batches them)")
    mask: str | None = setting(None, "how a feature is removed; text: mask | drop | pad | unk (default mask); causal LMs: drop | pad | eos | unk (default drop); images: blur | black | grey")
    segmentation: str | None = setting(None, "images: how regions are made (slic | quickshift | grid; default: chosen for the image size)")
    n_segments: int | None = setting(None, "images: about how many regions (default: chosen for the image size)")
    output: str | None = setting(None, "what is explained: probability | logit | log-probability (default: probability; causal LMs: log-probability)")


def _masker(view: PerturbationView) -> Any:
    """A shap masker whose 'masked input' is the keep-mask itself, evaluated by the adapter."""
    import shap

    class KeepMaskMasker(shap.maskers.Masker):  # type: ignore[misc]
        def __init__(self) -> None:
            self.shape = (1, len(view.features))
            self.clustering = view.clustering

        def __call__(self, mask: np.ndarray, *args: Any) -> tuple[np.ndarray]:
            return (np.asarray(mask, dtype=bool).reshape(1, -1),)

    return KeepMaskMasker()


_warm: list[threading.Thread] = []


def warm_up_in_background() -> None:
    """Compile shap's numba kernels on a background thread, once per process.

    shap's Partition explainer JIT-compiles its kernels on first use (seconds); started when a
    run begins, the compilation overlaps the model's loading and the methods that come first
    instead of stalling the first SHAP explanation. shap's kernels cannot be cached on disk
    safely (numba's cache of them crashes on reload), so this is the next best thing.
    """
    if _warm:
        return
    thread = threading.Thread(target=_warm_up, name="explain-shap-jit", daemon=True)
    _warm.append(thread)
    thread.start()
    atexit.register(thread.join, 60)  # never leave the interpreter while LLVM is compiling


def _warm_up() -> None:
    import shap

    from ..adapters.base import contiguous_linkage

    class Tiny(shap.maskers.Masker):  # type: ignore[misc]
        def __init__(self) -> None:
            self.shape = (1, 4)
            self.clustering = contiguous_linkage(4)

        def __call__(self, mask: np.ndarray, *args: Any) -> tuple[np.ndarray]:
            return (np.asarray(mask, dtype=bool).reshape(1, -1),)

    def model(masks: np.ndarray) -> np.ndarray:  # the dtype the adapters' evaluate returns
        return np.asarray(masks, dtype=bool).sum(1).astype(np.float32)

    try:
        shap.explainers.Partition(model, Tiny())(np.zeros((1, 4)), max_evals=20, silent=True)
    except Exception:  # a warm-up only: the real call reports any real problem
        pass


@register
class ShapMethod(Method):
    """SHAP (Owen) values from shap's Partition explainer."""

    name = "shap"
    title = "SHAP (partition)"
    families = ("text-classifier", "causal-lm", "image-classifier")
    Settings = ShapSettings
    reference = "https://arxiv.org/abs/1705.07874"

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return SHAP values with the base value and the efficiency gap in checks."""
        import shap

        s: ShapSettings = settings
        opts = view_options(s, granularity)
        with Cost(adapter) as cost:
            view = adapter.perturbation_view(example, target, **opts)
            d = len(view.features)
            max_evals = s.max_evals or max(500, 2 * d + 1)

            def model(masks: np.ndarray) -> np.ndarray:
                return view.evaluate(np.asarray(masks, dtype=bool))

            if d == 1:  # shap needs two features for a hierarchy; one feature's value is exact
                full, empty = view.evaluate(np.array([[True], [False]]))
                values, base = np.array([full - empty]), float(empty)
                fx = float(full)
            else:
                explainer = shap.explainers.Partition(model, _masker(view))
                out = explainer(np.zeros((1, d)), max_evals=max_evals, batch_size=s.batch_size, silent=True)
                values = np.asarray(out.values[0], dtype=np.float64)
                base = float(np.ravel(out.base_values)[0])
                fx = float(view.evaluate(np.ones((1, d), dtype=bool))[0])
            scores = view.expand(values)
        gap = abs(float(values.sum()) - (fx - base))
        checks = {"base_value": base, "output": fx, "efficiency_gap": gap}
        return self.perturbation_result(adapter, example, target, cost, view, scores, {**vars(s), "max_evals": max_evals}, checks)
