"""How a hand-written model's output becomes the class logits the adapters read: its head.

The adapters read logits and turn them into probabilities with `Adapter.head` (one softmax,
a sigmoid per label, or "identity" for a regression value). Models people write end in more
ways than that, and reading one as another gives a wrong answer with exit 0 (issue 24):

- one output logit (`nn.Linear(d, 1)` trained with `BCEWithLogitsLoss`): a softmax over one
  class is always 1.0 and every score 0. It is a binary classifier: z -> logits (-z, z) under a
  sigmoid per class, so P(positive) = sigmoid(z), P(negative) = 1 - sigmoid(z) (they sum to 1),
  the "logit" output of each class is its log-odds and the log-probability its log-sigmoid;
- probabilities (`return F.softmax(...)`, `nn.Sigmoid()` last): softmaxed again they flatten
  (a model's 1.0 became 0.4754). Rows summing to 1 become log p (softmax(log p) = p exactly,
  the same graph), per-label probabilities and a single P(positive) become log-odds (sigmoid of
  the log-odds is p);
- log-probabilities (`F.log_softmax`): already fine, softmax(log p) = p;
- a regression value: explained as it is ("identity").

`read_head` decides from what the config, `explain pack --head` or `from_model(head=...)`
states, else from the probe rows run at load: the last operation of the output's autograd
graph (softmax, log_softmax, sigmoid) and the numbers (non-negative rows summing to 1;
non-positive rows whose exps sum to 1). What it assumed is returned as a sentence for a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from ..errors import CheckpointError

HEADS = ("softmax", "sigmoid", "probabilities", "log_probabilities", "regression")
BINARY_LABELS = ("negative", "positive")
SUM_TOLERANCE = 1e-3  # float32 (or fp16) probabilities of one row sum to 1 within this
# Probabilities become log-odds / logs: clamped so that a saturated 0.0 or 1.0 gives a finite
# logit (sigmoid of it is within 1e-7 of the model's own probability).
EPS = 1e-7
# Operations that only move numbers about: the op before them made the output.
_SHAPE_OPS = {
    "ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "SqueezeBackward0", "SqueezeBackward1",
    "SqueezeBackward2", "UnsqueezeBackward0", "CloneBackward0", "ToCopyBackward0", "SelectBackward0",
    "SliceBackward0", "TransposeBackward0", "PermuteBackward0", "AliasBackward0", "ExpandBackward0",
}


@dataclass(frozen=True)
class Head:
    """A model's head as read at load: how its output becomes the adapters' logits.

    `convert` is one of: "none" (logits, or log-probabilities: used as they are), "log"
    (probabilities summing to 1 -> log p), "logit" (per-label probabilities -> log-odds),
    "binary_logit" / "binary_probability" / "binary_log_probability" (one output -> (-z, z)
    with z its log-odds), "value" (a regression: (B,) -> (B, 1)).
    """

    name: str  # one of HEADS, as stated or as read from the probe
    adapter_head: str  # Adapter.head: "softmax" | "sigmoid" | "identity"
    convert: str = "none"
    classes: int = 0  # outputs the adapters see (2 for one output read as binary; 0: unknown, causal LM)
    assumed: str | None = None  # the sentence to warn with when nothing was stated

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        """Return the adapters' logits for the model's own output (float32 where converted)."""
        c = self.convert
        if c == "none":
            return out
        if c == "value":
            return out.reshape(-1, 1) if out.dim() < 2 else out  # (B,) or () -- `.squeeze()` of one row -- -> (B, 1)
        x = out.float()
        if c == "log":
            return torch.log(x.clamp_min(1e-30))
        if c == "logit":
            return _log_odds(x)
        z = x.reshape(-1, 1)  # (B, 1), (B,) or () (`.squeeze()` of one row): the positive class's
        if c == "binary_probability":
            z = _log_odds(z)
        elif c == "binary_log_probability":
            z = _log_odds(torch.exp(z))
        return torch.cat([-z, z], dim=-1)  # (B, 2): sigmoid(-z) = 1 - sigmoid(z)

    @property
    def binary(self) -> bool:
        """Return True when one output was read as a two-class classifier."""
        return self.convert.startswith("binary")


def _log_odds(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(EPS, 1.0 - EPS)
    return torch.log(p) - torch.log1p(-p)


def check_head(stated: object) -> str | None:
    """Return a stated head name (one of HEADS) or None; raise CheckpointError for anything else."""
    if stated is None:
        return None
    name = str(stated).strip().lower().replace("-", "_")
    if name not in HEADS:
        raise CheckpointError(f"head is {stated!r}: use one of {', '.join(HEADS)}")
    return name


def last_operation(out: torch.Tensor) -> str | None:
    """Return the autograd name of the operation that computed `out` (reshapes skipped), or None."""
    fn = out.grad_fn
    while fn is not None and type(fn).__name__ in _SHAPE_OPS:
        fn = next((f for f, _ in fn.next_functions if f is not None), None)
    return type(fn).__name__ if fn is not None else None


def sums_to_one(out: torch.Tensor) -> bool:
    """Return True when every row (last axis) is non-negative and sums to 1."""
    x = out.detach().float()
    return bool(torch.isfinite(x).all()) and float(x.min()) >= -1e-6 and bool(((x.sum(-1) - 1).abs() <= SUM_TOLERANCE).all())


def exps_sum_to_one(out: torch.Tensor) -> bool:
    """Return True when every row (last axis) is non-positive and its exps sum to 1 (log-probabilities)."""
    x = out.detach().float()
    return bool(torch.isfinite(x).all()) and float(x.max()) <= 1e-6 and bool((torch.logsumexp(x, -1).abs() <= SUM_TOLERANCE).all())


def read_head(out: torch.Tensor, family: str, stated: str | None, labels: Sequence[str] | None = None) -> Head:
    """Return the head of a model whose probe rows gave `out` (classifier (B, C) or (B,); causal LM (B, T, V)).

    `out` should come from a forward with autograd on, so its last operation can be read.
    Raise CheckpointError when a stated head contradicts the numbers (probabilities outside
    [0, 1], log-probabilities above 0, a softmax over one output).
    """
    stated = check_head(stated)
    op = last_operation(out)
    x = out.detach().float()
    if family == "causal-lm":
        return _lm_head(x, op, stated)
    if x.dim() == 1 or x.shape[-1] == 1:
        return _one_output(x, op, stated, labels)
    classes = int(x.shape[-1])
    if stated is None:
        if op == "SoftmaxBackward0" or (op != "SigmoidBackward0" and sums_to_one(x)):
            how = "computed by a softmax" if op == "SoftmaxBackward0" else "non-negative, summing to 1 on the probe rows"
            return Head("probabilities", "softmax", "log", classes,
                        f"its outputs are probabilities ({how}): explained as they are, not softmaxed again; "
                        "state \"head\" (softmax | sigmoid | probabilities | log_probabilities | regression) if that is wrong")
        if op == "SigmoidBackward0" and _in_unit(x):
            return Head("probabilities", "sigmoid", "logit", classes,
                        "its outputs are per-label probabilities (computed by a sigmoid): explained as they are; "
                        "state \"head\" if that is wrong")
        if op == "LogSoftmaxBackward0" or exps_sum_to_one(x):
            return Head("log_probabilities", "softmax", "none", classes)  # softmax(log p) = p: nothing assumed
        return Head("softmax", "softmax", "none", classes)
    if stated == "softmax":
        return Head(stated, "softmax", "none", classes)
    if stated == "sigmoid":
        return Head(stated, "sigmoid", "none", classes)
    if stated == "regression":
        return Head(stated, "identity", "none", classes)
    if stated == "log_probabilities":
        if float(x.max()) > 1e-6:
            raise CheckpointError(f"head is log_probabilities but the model returned {float(x.max()):.3g} (> 0) on the probe rows")
        return Head(stated, "softmax", "none", classes)
    if not _in_unit(x):
        raise CheckpointError(
            f"head is probabilities but the model returned values from {float(x.min()):.3g} to {float(x.max()):.3g} on the probe rows"
        )
    if sums_to_one(x):
        return Head(stated, "softmax", "log", classes)
    return Head(stated, "sigmoid", "logit", classes)  # per-label probabilities (multi-label)


def _one_output(x: torch.Tensor, op: str | None, stated: str | None, labels: Sequence[str] | None) -> Head:
    """Return the head of a model with one output per row: binary (two classes), or a regression value."""
    named = f"{labels[0]}/{labels[1]}" if labels and len(labels) == 2 else "/".join(BINARY_LABELS)
    if stated == "regression":
        return Head(stated, "identity", "value", 1)
    if stated == "softmax":
        raise CheckpointError("head is softmax but the model has one output (a softmax over one class is always 1): "
                              "state sigmoid (a logit), probabilities, or regression")
    if stated == "probabilities" or (stated is None and op == "SigmoidBackward0"):
        if not _in_unit(x):
            raise CheckpointError(f"head is probabilities but the model returned values from {float(x.min()):.3g} to {float(x.max()):.3g}")
        assumed = None if stated else (f"one output computed by a sigmoid: read as P({named.split('/')[1]}) of a binary classifier "
                                       f"({named}); state \"head\" (regression, sigmoid, probabilities) if that is wrong")
        return Head("probabilities", "sigmoid", "binary_probability", 2, assumed)
    if stated == "log_probabilities":
        if float(x.max()) > 1e-6:
            raise CheckpointError(f"head is log_probabilities but the model returned {float(x.max()):.3g} (> 0) on the probe rows")
        return Head(stated, "sigmoid", "binary_log_probability", 2)
    assumed = None if stated else (f"one output: read as the logit of a binary classifier (sigmoid, as BCEWithLogitsLoss trains "
                                   f"it; classes {named}); state \"head\": \"regression\" or \"probabilities\" if that is wrong")
    return Head("sigmoid", "sigmoid", "binary_logit", 2, assumed)


def _lm_head(x: torch.Tensor, op: str | None, stated: str | None) -> Head:
    """Return a causal LM's head: next-token logits, log-probabilities or probabilities."""
    if stated in ("sigmoid", "regression"):
        raise CheckpointError(f"head is {stated} but a causal LM scores its next token over the vocabulary: "
                              "state softmax (logits), probabilities or log_probabilities")
    if stated == "probabilities" or (stated is None and (op == "SoftmaxBackward0" or sums_to_one(x))):
        if stated and not _in_unit(x):
            raise CheckpointError(f"head is probabilities but the model returned values from {float(x.min()):.3g} to {float(x.max()):.3g}")
        assumed = None if stated else ("its next-token outputs are probabilities (rows summing to 1): explained as they are, "
                                       "not softmaxed again; state \"head\" if that is wrong")
        return Head("probabilities", "softmax", "log", 0, assumed)
    if stated == "log_probabilities" or (stated is None and (op == "LogSoftmaxBackward0" or exps_sum_to_one(x))):
        return Head("log_probabilities", "softmax", "none", 0)
    return Head("softmax", "softmax", "none", 0)


def _in_unit(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all()) and float(x.min()) >= -1e-6 and float(x.max()) <= 1 + 1e-6


def logits_of(raw: Any) -> torch.Tensor:
    """Return the logits tensor of a forward's return value (tensor, tuple/list, dict or object)."""
    if isinstance(raw, torch.Tensor):
        return raw
    if isinstance(raw, Mapping) and isinstance(raw.get("logits"), torch.Tensor):
        return raw["logits"]
    if isinstance(getattr(raw, "logits", None), torch.Tensor):
        return raw.logits
    if isinstance(raw, (tuple, list)) and raw and isinstance(raw[0], torch.Tensor):
        return raw[0]
    raise CheckpointError(
        f"the model's forward returned a {type(raw).__name__}: the forward contract asks for logits, "
        "a tuple whose first element is the logits, or a dict with 'logits'"
    )


class Reader:
    """A forward's return value -> the adapters' logits: the logits tensor in it, read through the head."""

    def __init__(self, head: Head | None = None) -> None:
        self.head = head

    def __call__(self, raw: Any) -> torch.Tensor:
        """Return the logits the adapters read from one forward's return value."""
        out = logits_of(raw)
        return out if self.head is None else self.head(out)
