"""The one result type: a frozen Explanation per (input, method, target), grouped in Results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np

@dataclass(frozen=True)
class ModelInfo:
    """What was explained: enough to identify the checkpoint without loading it."""

    family: str
    path: str
    content_hash: str
    parameters: int
    labels: tuple[str, ...]
    architecture: str = ""
    device: str = "cpu"
    layers: int | None = None
    heads: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class InputRecord:
    """One input as the user gave it: a text, a prompt (+ continuation), or an image."""

    index: int
    kind: str  # "text" | "prompt" | "image"
    text: str | None = None
    path: str | None = None
    text_pair: str | None = None  # sentence pairs: the second text (the first is `text`)
    # For images: the picture itself as a base64 PNG, so reports need nothing but the results file.
    image_png: str | None = None
    width: int | None = None
    height: int | None = None
    continuation: str | None = None  # causal LM: the explained continuation (generated or given)
    prediction: Target | None = None  # the model's top answer for this input
    note: str | None = None  # e.g. "truncated from 700 to 512 tokens"
    label: str | None = None  # the true label, where the input gave one (a label column, an image folder)
    # Classifiers: the model's probability of every class, in the model's label order.
    probabilities: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Target:
    """What a score explains: a class (or a generated token) and the model's probability for it."""

    index: int
    label: str
    probability: float
    position: int | None = None  # causal LM: token position in the full sequence


@dataclass(frozen=True)
class Failure:
    """An input (or an input x method) that could not be explained, kept beside the results."""

    input: int
    method: str | None
    error: str


@dataclass(frozen=True)
class SelfCheck:
    """A method's check of its own estimate, with a verdict: a check that could fail, and did or not.

    `value` is compared with `threshold` (the README's method table says which way for each
    check); `sentence` is the verdict in plain words, as the report shows it.
    """

    name: str  # "evidence" (every method in output units, and Grad-CAM), "completeness" (IG), "stability" (SHAP, LIME), "surrogate_fit" (LIME)
    passed: bool
    value: float
    threshold: float
    sentence: str


# An explanation whose scores add up (in absolute value) to less than this, in the method's output
# units (probability, logit or log-probability), says that nothing moves the output: "no evidence".
# 1e-3 is 0.1 percentage point of probability: far above float32 noise (~1e-7), far below any
# change a reader would act on (the report's grey cards use the same figure).
NO_EVIDENCE = 1e-3
RELIABLE, UNRELIABLE, NO_EVIDENCE_VERDICT = "reliable", "unreliable", "no evidence"


def evidence(scores: Any, in_output_units: bool = True, output_change: float | None = None) -> SelfCheck:
    """Return the 'evidence' SelfCheck: is there anything here that moves the output?

    In output units the check passes when sum(|score|) >= NO_EVIDENCE, or when the method
    measured the output change f(x) - f(baseline) (IG, SHAP) and |change| >= NO_EVIDENCE: then
    the output does move, and scores that miss it are the completeness check's failure, not an
    absence of evidence. For scores in other units (Grad-CAM, attention relevance) it passes when
    any score is not 0. A failed one makes the verdict "no evidence".
    """
    a = np.abs(np.asarray(scores, dtype=np.float64))
    if not np.isfinite(a).all():
        return SelfCheck("evidence", False, float("nan"), NO_EVIDENCE, "no evidence: the scores are not finite numbers")
    if not in_output_units:
        value = float(a.max()) if a.size else 0.0
        if value > 0:
            return SelfCheck("evidence", True, value, 0.0, f"the largest |score| is {value:.3g}")
        return SelfCheck("evidence", False, value, 0.0, "no evidence: every score is 0, so nothing here points anywhere")
    total = float(a.sum())
    change = abs(float(output_change)) if output_change is not None and np.isfinite(output_change) else 0.0
    if total >= NO_EVIDENCE:
        return SelfCheck("evidence", True, max(total, change), NO_EVIDENCE,
                         f"the scores add up to {total:.3g} in absolute value (at least {NO_EVIDENCE:g})")
    if change >= NO_EVIDENCE:
        return SelfCheck("evidence", True, change, NO_EVIDENCE,
                         f"the output moves by {change:.3g} between the input and the baseline (at least {NO_EVIDENCE:g}), "
                         f"though the scores add up to only {total:.2g}")
    moves = f" and the output moves by {change:.2g}" if output_change is not None else ""
    return SelfCheck("evidence", False, max(total, change), NO_EVIDENCE,
                     f"no evidence: the scores add up to {total:.2g} in absolute value{moves} (below {NO_EVIDENCE:g} in the "
                     "output's units): no feature moves the output, so there is nothing here to rely on or to doubt")


@dataclass(frozen=True, eq=False)
class Explanation:
    """Scores of one method for one input and target, with what they cost and how sound they are.

    `scores` has one value per entry of `features` (text: words or tokens), or is an H x W grid
    at the input image's resolution (images, `features` empty). `checks` holds the method's own
    figures (e.g. IG `convergence_delta` and `output_change`, SHAP `base_value`, LIME `score`);
    `self_checks` the verdicts of the checks that could fail; `metrics` the figures computed
    afterwards from the model (faithfulness, sanity, agreement: `explain.metrics.evaluate`).
    `rows` counts the model rows this explanation evaluated, `cached_rows` the rows it asked
    for that a cache answered. `extras` holds further named arrays (e.g. attention matrices,
    the sub-word tokens of each word).
    """

    method: str
    family: str
    input: int
    target: Target
    features: tuple[str, ...]
    scores: np.ndarray
    granularity: str  # "word" | "token" | "pixel"
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    rows: int = 0
    checks: Mapping[str, float] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)
    cached_rows: int = 0
    self_checks: tuple[SelfCheck, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """Return "no evidence" (the 'evidence' check failed), "unreliable" (another failed) or "reliable".

        No evidence comes first: an explanation whose scores are all (nearly) zero is not
        reliable however its other checks came out (two zero estimates agree, 0 = 0 is complete).
        Results written before the evidence check have no such entry and are judged by the others.
        """
        if any(c.name == "evidence" and not c.passed for c in self.self_checks):
            return NO_EVIDENCE_VERDICT
        return RELIABLE if all(c.passed for c in self.self_checks) else UNRELIABLE

    @property
    def reliable(self) -> bool:
        """Return True when every self-check passed (so never for an explanation with no evidence)."""
        return self.verdict == RELIABLE

    def __eq__(self, other: object) -> bool:
        """Return True when every field, arrays included, is equal."""
        if not isinstance(other, Explanation):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if not _equal(a, b):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # holds arrays: not hashable

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """Return the k features with the largest scores as (feature, score), best first."""
        if self.granularity == "pixel":
            flat = self.scores.ravel()
            order = np.argsort(-flat, kind="stable")[:k]
            w = self.scores.shape[1]
            return [(f"({i // w},{i % w})", float(flat[i])) for i in order]
        order = np.argsort(-self.scores, kind="stable")[:k]
        return [(self.features[i], float(self.scores[i])) for i in order]

    def to_records(self) -> list[dict[str, Any]]:
        """Return one plain dict per feature: {'feature', 'score', 'rank'} (text families)."""
        ranks = np.empty(len(self.features), dtype=int)
        ranks[np.argsort(-self.scores, kind="stable")] = np.arange(1, len(self.features) + 1)
        return [
            {"feature": f, "score": float(s), "rank": int(r)}
            for f, s, r in zip(self.features, self.scores, ranks)
        ]

    def replace(self, **changes: Any) -> "Explanation":
        """Return a copy with the given fields changed (Explanations are never mutated)."""
        return dataclasses.replace(self, **changes)


class Results(list):  # type: ignore[type-arg]
    """A list of Explanations plus what they came from: model, inputs, failures and run settings."""

    def __init__(
        self,
        explanations: list[Explanation] | None = None,
        *,
        model: ModelInfo,
        inputs: list[InputRecord],
        failures: list[Failure] | None = None,
        run: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(explanations or [])
        self.model = model
        self.inputs = list(inputs)
        self.failures = list(failures or [])
        self.run = dict(run or {})

    def __eq__(self, other: object) -> bool:
        """Equal when explanations, model, inputs and failures are equal (run info aside)."""
        if not isinstance(other, Results):
            return list.__eq__(self, other)
        return (
            list.__eq__(self, other)
            and self.model == other.model
            and self.inputs == other.inputs
            and self.failures == other.failures
        )

    __hash__ = None

    def for_input(self, index: int) -> list[Explanation]:
        """Return the explanations of input `index`, in run order."""
        return [e for e in self if e.input == index]

    def by_method(self, method: str) -> list[Explanation]:
        """Return the explanations made by `method`."""
        return [e for e in self if e.method == method]

    def __iter__(self) -> Iterator[Explanation]:
        return super().__iter__()


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=True)
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type) and type(a) is type(b):  # e.g. a SelfCheck whose value is NaN
        return all(_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)
