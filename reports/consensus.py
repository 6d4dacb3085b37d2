"""The first screen's explanation of an answer: the methods' scores averaged in the output's own units.

One explanation per target is shown before any script runs: the mean of the scores of the methods
whose scores are contributions to the same output (probability, logit or log-probability), on
the first one's features, drawn on the report's colour scale (evidence.report_scales), so its
colours say how much each word moves the answer, not how it ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .constants import UNITLESS
from .data import method_title, target_groups
from .evidence import clean_token, output_change, output_kind, score_units, strength, weak_evidence

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, InputRecord


@dataclass
class Consensus:
    """The averaged explanation of one target: values in `units`, the methods used, and what the page says of it."""

    values: np.ndarray
    used: list[Explanation]
    kind: str  # the output kind of `units` ('probability', ...; '' for unitless methods)
    units: str  # e.g. 'contribution to p(neutral)'
    top: float  # the largest |score| any method used gave: "no word moves the answer by more than this"
    total: float | None  # mean f(x) - f(baseline) of the methods that report it
    sentence: str | None = None  # no or weak evidence (every method used lacks it)
    features: list[str] = field(default_factory=list)

    @property
    def pixel(self) -> bool:
        """Return True for a map (an image explanation)."""
        return bool(self.used) and self.used[0].granularity == "pixel"

    @property
    def methods(self) -> str:
        """Return the methods averaged, as words ('IG, SHAP and LIME' style)."""
        return ", ".join(method_title(e.method) for e in self.used)


def consensus(exps: Sequence[Explanation]) -> Consensus | None:
    """Return the consensus of one target's explanations, or None when none has scores.

    Uses the methods whose scores are contributions to the output and that hold evidence, of
    the first such method's output kind, on its features (or grid); when every method lacks
    evidence, the first one's scores with its sentence. Unitless methods only when nothing else.
    """
    usable = [e for e in exps if e.method not in UNITLESS and np.size(e.scores)]
    usable = usable or [e for e in exps if np.size(e.scores)]
    if not usable:
        return None
    quiet = [weak_evidence(e) for e in usable]
    good = [e for e, q in zip(usable, quiet) if q is None]
    first = (good or usable)[0]
    same = [e for e in (good or usable[:1]) if output_kind(e) == output_kind(first) and np.shape(e.scores) == np.shape(first.scores)
            and tuple(e.features) == tuple(first.features)]
    values = np.mean([np.asarray(e.scores, dtype=np.float64) for e in same], axis=0)
    totals = [c for c in (output_change(e) for e in same) if c is not None]
    feats = [clean_token(f) if first.granularity == "token" else str(f) for f in first.features]
    return Consensus(values, same, output_kind(first), score_units(first), max(strength(e) for e in same),
                     float(np.mean(totals)) if totals else None, None if good else quiet[0], feats)


def main_group(r: InputRecord, exps: Sequence[Explanation]) -> list[Explanation]:
    """Return the explanations of the input's answer: the predicted class, or the whole continuation for a causal LM."""
    groups = target_groups(exps)
    if not groups:
        return []
    if r.kind == "prompt":
        return next((g for g in groups if g[0].target.position is None), groups[0])
    pred = r.prediction
    return next((g for g in groups if pred is not None and g[0].target.index == pred.index), groups[0])
