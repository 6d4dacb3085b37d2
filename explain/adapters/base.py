"""What every model adapter offers the methods, so that methods stay family-blind.

An adapter prepares raw inputs into Examples (prediction computed once and shared by all
methods), resolves targets, and exposes two views of an (example, target) pair:

- a GradientView: a differentiable input tensor (text: word embeddings; images: pixels), its
  baseline, a forward function to the target's scalar output, and a reduction of attributions
  to per-feature scores (text: per word or token; images: an H x W grid at input resolution);
- a PerturbationView: a list of features that can be removed, an `evaluate(keep_masks)` that
  scores many perturbed copies through the one batched runner, a feature clustering for shap's
  partition explainer, and an expansion from per-feature values to scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from ..errors import MethodError, TargetError
from ..results.explanation import InputRecord, ModelInfo, Target
from ..execution.runner import Runner
from .targets import as_list, class_indices

OUTPUTS = ("probability", "logit", "log-probability")
# Said in one line when a gradient method meets a model whose forward cuts the graph.
NO_GRADIENT = ("the model's forward cuts the gradient from its input to its output (torch.no_grad() or .detach() "
               "inside forward); methods that need only forward passes still work: shap, lime, occlusion, ablation")


@dataclass
class Example:
    """An input ready to explain: its record, the model's class probabilities, family state."""

    index: int
    record: InputRecord
    probs: np.ndarray  # (C,) class probabilities (causal LM: of the first explained token)
    state: Any = None  # family-specific prepared data (token ids, word spans, pixels, ...)


@dataclass
class GradientView:
    """A differentiable view of (example, target) for gradient methods such as IG."""

    inputs: torch.Tensor  # (1, ...) what attributions are computed for
    baselines: torch.Tensor  # same shape as inputs
    forward: Callable[[torch.Tensor], torch.Tensor]  # (B, ...) -> (B,) target output
    reduce: Callable[[torch.Tensor], np.ndarray]  # attributions (1, ...) -> scores
    features: tuple[str, ...]
    granularity: str
    baseline: str  # the baseline's name as used, e.g. "pad" or "black"
    output: str  # what forward returns, as used: "probability", "logit" or "log-probability"
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class PerturbationView:
    """A removable-features view of (example, target) for perturbation methods."""

    features: tuple[str, ...]
    evaluate: Callable[[np.ndarray], np.ndarray]  # (B, d) bool keep-masks -> (B,) target output
    clustering: np.ndarray  # scipy linkage matrix (d-1, 4) over features, for shap's Partition
    expand: Callable[[np.ndarray], np.ndarray]  # (d,) per-feature values -> scores
    granularity: str
    mask: str  # how a removed feature is filled, as used, e.g. "mask", "drop" or "blur"
    output: str  # what evaluate returns, as used: "probability", "logit" or "log-probability"
    sampling: str = "lime-text"  # how LIME draws neighbours: "lime-text" or "lime-image"
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttentionView:
    """The model's own attention maps for one input, in the graph of the target's output."""

    attentions: list[torch.Tensor]  # per layer (1, H, T, T), rows = queries; requires grad
    output: torch.Tensor  # scalar target output the relevance view differentiates
    query: int  # token position whose row holds the answer (CLS; causal LM: the predicting position)
    tokens: tuple[str, ...]  # the T tokens, special ones included
    features: tuple[str, ...]  # words or tokens, special tokens excluded
    feature_tokens: tuple[tuple[int, ...], ...]  # token positions of each feature
    granularity: str


class Adapter(ABC):
    """The only code that knows a model family's quirks."""

    family: ClassVar[str]

    def __init__(self, model: torch.nn.Module, info: ModelInfo, runner: Runner) -> None:
        self.model: Any = model  # a torch module; Hugging Face ones add methods mypy cannot see
        self.info = info
        self.runner = runner
        self.head = "softmax"  # how logits become probabilities: one of HEADS (set by the loader)
        # Methods this model cannot serve although its family can, each with the reason (a
        # TorchScript program takes no hooks: no Grad-CAM layer, no embedding replacement, no attention).
        self.refused: dict[str, str] = {}

    @property
    def device(self) -> torch.device:
        """Return the device the model runs on."""
        return self.runner.device

    @property
    def labels(self) -> tuple[str, ...]:
        """Return the class label names."""
        return self.info.labels

    @abstractmethod
    def prepare(self, raw: Any, index: int, **options: Any) -> Example:
        """Return an Example for one raw input; raise InputError when it cannot be used."""

    @abstractmethod
    def gradient_view(self, example: Example, target: Target, **options: Any) -> GradientView:
        """Return the differentiable view of (example, target)."""

    @abstractmethod
    def perturbation_view(self, example: Example, target: Target, **options: Any) -> PerturbationView:
        """Return the removable-features view of (example, target)."""

    def batch_rows(self, example: Example) -> int:
        """Return how many copies of this example one gradient batch may hold (images override)."""
        return self.runner.batch_size

    def input_extras(self, example: Example) -> dict[str, Any]:
        """Return extras every explanation of this input carries (images: the model's window when a crop cuts the image)."""
        return {}

    def attention_view(self, example: Example, target: Target, granularity: str = "word") -> AttentionView:
        """Return the attention maps of (example, target); only transformer families have them."""
        raise NotImplementedError(f"{self.family} models have no attention maps")

    def targets(self, example: Example, spec: Any = None) -> list[Target]:
        """Return the Targets to explain: the prediction for None, else what `spec` names.

        `spec` is one spec or a list of them, read by the rule in `explain.adapters.targets`:
        label names win, '#N' / 'index:N' is always an index, 'all' is every class.
        """
        if spec is None:
            return [self._target(int(np.argmax(example.probs)), example)]
        return [self._target(i, example) for i in self.class_indices(spec)]

    def check_target(self, spec: Any) -> None:
        """Raise TargetError now if `spec` names a label the model lacks (before any input runs)."""
        if spec is not None:
            self.class_indices(spec)

    def class_indices(self, spec: Any) -> list[int]:
        """Return the class indices a spec (or list of specs) names, in order, without repeats."""
        out: list[int] = []
        for s in as_list(spec):
            out.extend(i for i in class_indices(s, self.labels) if i not in out)
        return out

    def label_index(self, spec: int | str) -> int:
        """Return the class index one label name or index names; raise TargetError if there is none."""
        found = class_indices(spec, self.labels)
        if len(found) != 1:
            raise TargetError(f"target {spec!r} names {len(found)} classes, not one")
        return found[0]

    def _target(self, index: int, example: Example) -> Target:
        return Target(index=index, label=self.labels[index], probability=float(example.probs[index]))


# How a head's logits become probabilities (Adapter.head; from a Hugging Face config's
# problem_type and num_labels): one softmax over the classes, an independent sigmoid per label
# (multi-label), or none (regression: the output is the predicted value itself).
HEADS = ("softmax", "sigmoid", "identity")


def transform(logits: torch.Tensor, output: str, head: str = "softmax") -> torch.Tensor:
    """Return (..., C) probabilities, log-probabilities or logits (float32) from logits.

    A multi-label head's probabilities are per-label sigmoids; a regression head ("identity")
    has no probabilities: "probability" and "logit" are both its predicted value.
    """
    x = logits.float()
    if output == "logit":
        return x
    if output not in ("probability", "log-probability"):
        raise ValueError(f"unknown output {output!r}: use one of {', '.join(OUTPUTS)}")
    if head == "identity":
        if output == "log-probability":
            raise MethodError("a regression head has no log-probability: explain its value (output=probability or logit)")
        return x
    if head == "sigmoid":
        return torch.sigmoid(x) if output == "probability" else torch.nn.functional.logsigmoid(x)
    return torch.softmax(x, dim=-1) if output == "probability" else torch.log_softmax(x, dim=-1)


def select_output(logits: torch.Tensor, index: int | torch.Tensor, output: str, head: str = "softmax") -> torch.Tensor:
    """Return the (B,) target output from (B, C) logits: probability, logit or log-probability."""
    values = transform(logits, output, head)
    if isinstance(index, torch.Tensor):
        return values.gather(-1, index.view(-1, 1)).squeeze(-1)
    return values[:, index]


def contiguous_linkage(n: int) -> np.ndarray:
    """Return a balanced binary hierarchy over n features in order (neighbours merge first).

    shap's partition explainer walks this tree; for text it keeps phrases together, the way
    shap's own text masker clusters neighbouring tokens.
    """
    if n < 2:
        return np.zeros((0, 4))
    rows: list[list[float]] = []
    clusters: list[tuple[int, int]] = [(i, 1) for i in range(n)]  # (cluster id, size)
    next_id, height = n, 1.0
    while len(clusters) > 1:
        merged: list[tuple[int, int]] = []
        for j in range(0, len(clusters) - 1, 2):
            (a, sa), (b, sb) = clusters[j], clusters[j + 1]
            rows.append([a, b, height, sa + sb])
            merged.append((next_id, sa + sb))
            next_id += 1
        if len(clusters) % 2:
            merged.append(clusters[-1])
        clusters = merged
        height += 1.0
    return np.asarray(rows, dtype=float)


def check_gradient(out: torch.Tensor, x: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """Return `out`; raise MethodError (NO_GRADIENT) when autograd is on, the input or a weight wants a
    gradient, and the model's forward gave an output outside the graph."""
    if torch.is_grad_enabled() and not out.requires_grad and (x.requires_grad or any(p.requires_grad for p in model.parameters())):
        raise MethodError(f"this method needs gradients and {NO_GRADIENT}")
    return out
