"""Faithfulness of one explanation through the model: deletion/insertion curves and ERASER AOPC, against chance.

Every perturbed copy is scored by the adapter's PerturbationView.evaluate, i.e. by the one
batched runner, with the metric's own removal (the adapter's `baseline` names: text mask |
pad | unk | drop, causal LMs eos | pad | unk | drop, images blur | black | mean | noise; None:
the adapter's default), chosen apart from the methods' and recorded with every score, and the
view's output (classifiers: probability; causal LMs: log-probability). Text features are the explanation's own words or tokens; an image map is
ranked over a fine grid of cells by its mean inside each cell. The same curves under a few
seeded random orders give the chance level every score is read against; they depend only on
the input and target, so all methods of one input share them.

Curves: RISE (Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421).
Comprehensiveness / sufficiency: ERASER (DeYoung et al. 2020, https://arxiv.org/abs/1911.03429).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..adapters.base import Adapter, Example, PerturbationView
from ..errors import ExplainError, MethodError
from ..results.explanation import Explanation
from . import curves, eraser

RANDOM_ORDERS = 5  # random orders averaged for each chance baseline
IMAGE_CELLS = 64  # image views are cut into about 8 x 8 grid cells: fine enough for small objects

KEYS = ("deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency")


@dataclass(frozen=True)
class OrderScores:
    """The faithfulness figures of one feature order."""

    deletion: np.ndarray  # (P,) output with the top counts[j] features removed
    insertion: np.ndarray  # (P,) output with only the top counts[j] features kept
    comprehensiveness: float
    sufficiency: float


def measure(view: PerturbationView, orders: list[np.ndarray], steps: int) -> tuple[np.ndarray, list[OrderScores]]:
    """Return (curve fractions, scores of each order), all rows scored in one call to view.evaluate."""
    d = len(view.features)
    counts, bins = curves.curve_counts(d, steps), eraser.bin_counts(d)
    blocks = []
    for order in orders:
        blocks += [
            curves.deletion_masks(order, counts, d),
            curves.insertion_masks(order, counts, d),
            curves.deletion_masks(order, bins, d),
            curves.insertion_masks(order, bins, d),
        ]
    masks = np.concatenate(blocks)
    # Orders share rows (the full input, the empty one, often more): each distinct row once.
    unique, inverse = np.unique(masks, axis=0, return_inverse=True)
    values = np.asarray(view.evaluate(unique), dtype=np.float64)[inverse.ravel()]
    out: list[OrderScores] = []
    p, b, start = len(counts), len(bins), 0
    for _ in orders:
        deletion = values[start : start + p]
        insertion = values[start + p : start + 2 * p]
        without_top = values[start + 2 * p : start + 2 * p + b]
        only_top = values[start + 2 * p + b : start + 2 * p + 2 * b]
        full = deletion[0]  # counts start at 0: nothing removed
        out.append(
            OrderScores(
                deletion=deletion,
                insertion=insertion,
                comprehensiveness=eraser.comprehensiveness(full, without_top),
                sufficiency=eraser.sufficiency(full, only_top),
            )
        )
        start += 2 * p + 2 * b
    return counts / d, out


def figures(fractions: np.ndarray, scores: OrderScores) -> dict[str, float]:
    """Return the four headline numbers of one order: deletion/insertion AUC, comprehensiveness, sufficiency."""
    return {
        "deletion_auc": curves.auc(fractions, scores.deletion),
        "insertion_auc": curves.auc(fractions, scores.insertion),
        "comprehensiveness": scores.comprehensiveness,
        "sufficiency": scores.sufficiency,
    }


def feature_values(e: Explanation, view: PerturbationView) -> np.ndarray:
    """Return e's score per view feature: its own scores (text) or the mean of its map in each image cell."""
    if e.granularity == "pixel":
        segments = np.asarray(view.extras.get("segments", ()))
        if segments.shape != np.shape(e.scores):
            raise MethodError(
                f"input {e.input}: the {e.method} map is {np.shape(e.scores)} but the image view's segments are "
                f"{segments.shape}; was the explanation made from another image?"
            )
        seg = segments.ravel()
        d = len(view.features)
        counts = np.bincount(seg, minlength=d)
        return np.bincount(seg, np.asarray(e.scores, dtype=np.float64).ravel(), d) / np.maximum(counts, 1)
    if tuple(view.features) != tuple(e.features):
        raise MethodError(
            f"input {e.input}: the model now splits the input into {len(view.features)} features, the {e.method} "
            f"explanation has {len(e.features)}; was it made with another checkpoint, max_length or granularity?"
        )
    return np.asarray(e.scores, dtype=np.float64)


class Faithfulness:
    """Scores explanations against the model, caching each (input, target)'s view and chance baseline."""

    def __init__(
        self,
        model: Adapter,
        *,
        steps: int = 20,
        random_orders: int = RANDOM_ORDERS,
        seed: int = 0,
        cells: int = IMAGE_CELLS,
        removal: str | None = None,
        mask: str | None = None,
    ) -> None:
        self.model, self.steps, self.random_orders, self.seed, self.cells = model, steps, random_orders, seed, cells
        removal = removal or mask  # `mask`: the old name of `removal`
        self.options = {"baseline": removal} if removal else {}  # None: the adapter's default removal
        self.removal: str | None = removal  # as asked; the views say what was used
        self._views: dict[tuple[Any, ...], tuple[PerturbationView, dict[str, float], dict[str, np.ndarray]]] = {}

    def view(self, example: Example, e: Explanation) -> tuple[PerturbationView, dict[str, float], dict[str, np.ndarray]]:
        """Return (view, chance figures, chance curves) of e's input and target, computed once."""
        key = (e.input, e.target.index, e.target.position, e.granularity)
        if key not in self._views:
            view = self._make_view(example, e)
            d = len(view.features)
            if d < 1:
                raise ExplainError(f"input {e.input}: no features to remove")
            orders = curves.random_orders(d, self.random_orders, [self.seed, e.input, d])
            fractions, scores = measure(view, orders, self.steps)
            rows = [figures(fractions, s) for s in scores]
            chance = {f"{k}_random": float(np.mean([r[k] for r in rows])) for k in KEYS}
            chance_curves = {
                "deletion_curve_random": np.mean([s.deletion for s in scores], 0).astype(np.float32),
                "insertion_curve_random": np.mean([s.insertion for s in scores], 0).astype(np.float32),
            }
            self._views[key] = (view, chance, chance_curves)
        return self._views[key]

    def _make_view(self, example: Example, e: Explanation) -> PerturbationView:
        if e.granularity != "pixel":
            return self.model.perturbation_view(example, e.target, granularity=e.granularity, **self.options)
        try:  # a fine grid ranks any map fairly; superpixels would favour maps made on the same superpixels
            return self.model.perturbation_view(example, e.target, segmentation="grid", n_segments=self.cells, **self.options)
        except MethodError as err:
            if "segmentation" not in str(err):
                raise
            return self.model.perturbation_view(example, e.target, **self.options)  # no grid here: the adapter's segments

    def score(self, example: Example, e: Explanation) -> tuple[dict[str, float], dict[str, Any]]:
        """Return (checks, extras) of e: the four figures, their _random chance levels, and the curves."""
        view, chance, chance_curves = self.view(example, e)
        order = curves.ranking(feature_values(e, view))
        fractions, (scores,) = measure(view, [order], self.steps)
        checks = {**figures(fractions, scores), **chance}
        extras = {
            "curve_fractions": fractions.astype(np.float32),
            "deletion_curve": scores.deletion.astype(np.float32),
            "insertion_curve": scores.insertion.astype(np.float32),
            **chance_curves,
            "faithfulness_removal": view.mask,  # how features were removed, as used, e.g. "mask" or "blur"
            "faithfulness_output": view.output,  # what the curves track: probability or log-probability
        }
        return checks, extras
