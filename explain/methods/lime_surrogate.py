"""LIME (Ribeiro et al. 2016, https://arxiv.org/abs/1602.04938): a local linear surrogate via lime.

Neighbours are drawn exactly as lime's text and image explainers draw them (same random
stream for a seed), scored by the adapter through the one batched runner as token ids or
pixel batches, and fitted with lime's own `LimeBase` (weighted ridge, exponential kernel on
cosine distance). Every occurrence of a word is its own feature.

Self-checks (no extra model rows), both from two surrogates fitted on independent halves of the
neighbours (odd and even draws, each with the input itself):
- `surrogate_fit`: out-of-sample weighted R^2 - each half's surrogate predicts the other half's
  neighbours (2-fold cross-validation, weighted by lime's kernel); fails below `min_r2` (0.5).
  lime's own `score` (kept in `checks`) is the R^2 on the rows the surrogate was fitted to, which
  a surrogate with as many weights as neighbours drives up on pure noise (0.78 at 40 samples and
  30 features); rows it has not seen cannot be fitted that way.
- `stability`: the agreement on the top features of the two half surrogates (see stability.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..adapters.base import Adapter, Example
from ..results.explanation import Explanation, SelfCheck, Target
from .registry import register
from . import budget, stability
from .base import BASELINE_HELP, Cost, Method, setting, view_options

# lime's defaults: text distances are cosine x 100 with width 25; images cosine with width 0.25.
_KERNEL_WIDTH = {"lime-text": 25.0, "lime-image": 0.25}
_DISTANCE_SCALE = {"lime-text": 100.0, "lime-image": 1.0}
MIN_R2 = 0.5  # below it the surrogate explains less than half the (weighted) variance it was fitted to


@dataclass(frozen=True)
class LimeSettings:
    """Settings of LIME."""

    num_samples: int | None = setting(None, "neighbours drawn (default: 40 per feature, at least 500 and at most 5000 (lime's fixed default); images 1000)")
    adaptive: bool = setting(True, "score neighbours in rounds (2 per feature, at least 100, then x1.5, x2, x3, ...) and stop when the top features and their signs have settled and the stability statistic passes, or at num_samples")
    baseline: str | None = setting(None, BASELINE_HELP)
    segmentation: str | None = setting(None, "images: how superpixels are made (slic | quickshift | grid; default: chosen for the image size)")
    n_segments: int | None = setting(None, "images: about how many superpixels (default: chosen for the image size)")
    kernel_width: float | None = setting(None, "kernel width (default: lime's, 25 for text, 0.25 for images)")
    output: str | None = setting(None, "what is explained: probability | logit | log-probability (default: probability; causal LMs: log-probability)")
    check: bool = setting(True, "self-checks from surrogates fitted on two independent halves of the neighbours (no extra model rows): surrogate fit (R^2 on the other half's neighbours) and stability")
    min_r2: float = setting(0.5, "surrogate_fit self-check: the least out-of-sample weighted R^2 that passes")


def _kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def sample_neighbours(sampling: str, d: int, num_samples: int, rs: np.random.RandomState) -> np.ndarray:
    """Return (num_samples, d) 0/1 rows, the first all ones, drawn as lime draws them."""
    if sampling == "lime-text":
        sizes = rs.randint(1, d + 1, num_samples - 1)
        data = np.ones((num_samples, d))
        for i, size in enumerate(sizes, start=1):
            data[i, rs.choice(range(d), size, replace=False)] = 0
        return data
    rs.randint(0, high=1000)  # lime_image draws its segmentation seed first; keep the stream aligned
    bits = rs.randint(0, 2, num_samples * d).reshape((num_samples, d))
    bits[0, :] = 1
    return bits.astype(float)


def default_samples(sampling: str, d: int) -> int:
    """Return the neighbourhood size for d features when the user sets none.

    lime's fixed 5000 is what a 125-word text needs; short texts reach the same top features
    with far fewer (the planted-truth hit rate of the bundled classifier is 100% at 200
    samples for 15 words), so the budget scales with the number of features.
    """
    if sampling == "lime-text":
        return int(min(5000, max(500, 40 * d)))
    return 1000


@register
class LimeMethod(Method):
    """LIME surrogate weights per feature."""

    name = "lime"
    libraries = ("lime.lime_base",)
    title = "LIME"
    families = ("text-classifier", "causal-lm", "image-classifier")
    Settings = LimeSettings
    reference = "https://arxiv.org/abs/1602.04938"
    batchable = True

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return the surrogate's weights, its fit (R^2) and intercept in checks, and its surrogate_fit and stability self-checks."""
        from lime.lime_base import LimeBase
        from sklearn.metrics import pairwise_distances
        from sklearn.utils import check_random_state

        s: LimeSettings = settings
        opts = view_options(s, granularity)
        with Cost(adapter) as cost:
            view = adapter.perturbation_view(example, target, **opts)
            d = len(view.features)
            n = s.num_samples or default_samples(view.sampling, d)
            rs = check_random_state(seed)
            data = sample_neighbours(view.sampling, d, n, rs)
            distances = pairwise_distances(data, data[:1], metric="cosine").ravel() * _DISTANCE_SCALE[view.sampling]
            width = s.kernel_width or _KERNEL_WIDTH[view.sampling]
            base = LimeBase(partial(_kernel, kernel_width=width), verbose=False, random_state=rs)
            grown: budget.Grown | None = None
            fits: dict[int, tuple[float, np.ndarray, float, Any]] = {}  # by neighbours: the rounds' fits, the last one kept
            verdicts: dict[int, tuple[SelfCheck, SelfCheck, float, float]] = {}  # by neighbours: the rounds' half checks
            if s.adaptive:  # rounds over slices of the one draw, each row scored once (budget.py)
                grown, labels = budget.grow_lime(
                    cost.counted(view.evaluate, remember=True), data,
                    lambda b, y: fits.setdefault(b, _fit(base, data[:b], y, distances[:b]))[1],
                    lambda b, y, v: verdicts.setdefault(b, half_checks(base, data[:b], y, distances[:b], v, s.min_r2))[1].passed,
                    lambda: adapter.runner.rows)
                n, data, distances = grown.used, data[: grown.used], distances[: grown.used]
            else:
                labels = np.asarray(cost.counted(view.evaluate)(data.astype(bool))).reshape(-1, 1)
            intercept, values, score, local_pred = fits[n] if n in fits else _fit(base, data, labels, distances)
            scores = view.expand(values)
        checks = {"score": float(score), "intercept": float(intercept), "local_prediction": float(np.ravel(local_pred)[0])}
        self_checks = []
        if s.check:
            fit, stable, r2, floor = verdicts[n] if n in verdicts else half_checks(base, data, labels, distances, values, s.min_r2)
            checks.update({"stability": stable.value, "noise_floor": floor,
                           **({"heldout_r2": r2} if np.isfinite(r2) else {})})  # NaN: undefined
            self_checks += [fit, stable if grown is None else grown.annotate(stable)]
        if grown is not None:
            view.extras = {**view.extras, "budget": grown.record()}
        settings = {**vars(s), "num_samples": n if grown is None else grown.cap, "kernel_width": width}  # adaptive: the cap
        return self.perturbation_result(adapter, example, target, cost, view, scores, settings, checks, self_checks)


def _fit(base: Any, data: np.ndarray, labels: np.ndarray, distances: np.ndarray) -> tuple[float, np.ndarray, float, Any]:
    """Return (intercept, per-feature weights, weighted R^2, local prediction) of lime's surrogate."""
    d = data.shape[1]
    intercept, weights, score, local_pred = base.explain_instance_with_data(data, labels, distances, 0, d, feature_selection="none")
    values = np.zeros(d)
    for i, w in weights:
        values[i] = w
    return float(intercept), values, float(score), local_pred


def half_checks(
    base: Any, data: np.ndarray, labels: np.ndarray, distances: np.ndarray, values: np.ndarray, min_r2: float
) -> tuple[SelfCheck, SelfCheck, float, float]:
    """Return (surrogate_fit, stability, held-out R^2, noise floor) from surrogates fitted on two independent halves of the neighbours.

    The noise floor: each half's weights scatter about the full fit's, so half their largest
    disagreement is the full fit's noise (the report draws scores within it as weak evidence).
    """
    n = len(data)
    # two independent neighbourhoods of n/2 (odd and even draws, each with the input itself)
    halves = [np.r_[0, np.arange(1 + h, n, 2)] for h in (0, 1)]
    fits = [_fit(base, data[i], labels[i], distances[i]) for i in halves]
    r2 = heldout_r2(data, labels.ravel(), base.kernel_fn(distances), halves, [(f[0], f[1]) for f in fits])
    # k comes from the full fit: how many features the explanation shown really has
    stable = stability.stability(fits[0][1], fits[1][1], f"fits on two independent halves of the {n} neighbours", reference=values)
    return surrogate_fit(r2, min_r2), stable, r2, stability.noise_floor(fits[0][1], fits[1][1]) / 2


def heldout_r2(
    data: np.ndarray, labels: np.ndarray, weights: np.ndarray, halves: list[np.ndarray], fits: list[tuple[float, np.ndarray]]
) -> float:
    """Return the weighted R^2 of each half's surrogate (intercept, weights) on the other half's neighbours.

    The input itself (row 0, in both halves) is left out; rows are weighted by lime's kernel,
    as lime weighs them in its own (in-sample) score.
    """
    from sklearn.metrics import r2_score

    rows, predicted = [], []
    for (intercept, coef), other in zip(fits, halves[::-1]):
        unseen = other[1:]
        rows.append(unseen)
        predicted.append(intercept + data[unseen] @ coef)
    held = np.concatenate(rows)
    y, w = labels[held], weights[held]
    if held.size < 2 or not w.sum() > 0 or np.ptp(y) == 0:
        return float("nan")  # the output does not vary over these neighbours: R^2 is undefined
    return float(r2_score(labels[held], np.concatenate(predicted), sample_weight=weights[held]))


def surrogate_fit(r2: float, threshold: float = MIN_R2) -> SelfCheck:
    """Return the 'surrogate_fit' SelfCheck: the surrogate's weighted R^2 on neighbours it was not fitted to."""
    passed = bool(np.isfinite(r2) and r2 >= threshold)
    if not np.isfinite(r2):
        return SelfCheck("surrogate_fit", False, float(r2), threshold,
                         "the output does not vary over the neighbours the surrogate was not fitted to: its fit (R^2) is undefined")
    sentence = (f"the linear surrogate explains {r2:.2f} of the output's variance on neighbours it was not fitted to "
                f"(R^2 {'at least' if passed else 'below'} {threshold:.2f})")
    if not passed:
        sentence += ": the model is not close to linear in these features here, so the weights are a poor summary"
    return SelfCheck("surrogate_fit", passed, float(r2), threshold, sentence)
