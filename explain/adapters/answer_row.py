"""Which query row of a transformer's attention holds the model's answer to a target.

Attention rows are queries: row q says what token q reads. Relevance and rollout give a score
per word by reading one row of their (T, T) matrix, so that row must be the token whose final
hidden state the explained output is computed from. Read any other row and the scores explain
a token the answer never looks at (issue 15 item 5: GPT-2 classifiers read at row 0 gave every
word but the first a score of 0).

- Encoder classifiers (BERT, RoBERTa, DistilBERT, ...): the first token ([CLS] / <s>). Their
  heads pool position 0 (BERT's pooler, RoBERTa's classification head read hidden_states[:, 0]).
- Decoder-only classifiers (GPT-2, Llama, Mistral, ... *ForSequenceClassification): the
  rightmost token whose id is not config.pad_token_id (the last token when it is None). This is
  transformers' own pooling rule, copied so that the row is the one the logits come from: under
  causal attention only that token has read the whole text.
- Bidirectional heads built on a sequence summary (XLNet: config.summary_type "last") read the
  last token.
- Causal LMs: the position just before each predicted token (position p's logits predict token
  p + 1). A single generated token has one row; the whole continuation (the sum of every
  generated token's log-probability) has one row per generated token, and its relevance is the
  sum of those rows' relevances (see explain.methods.attention).

- Own (hand-written, non-HF) classifiers state their rule: `"answer_row": "first" | "last" |
  "mean"` in an explain-torch config.json (or `answer_row=` when wrapping a module). "mean" is
  a head on the mean of every token (examples/own_models/encoder_classifier.py): every row
  answers, and relevance is the mean of their rows, not the sum used for a continuation. With
  no stated rule an own model is assumed to read its first token (its last under causal
  attention), and the rule is reported as "first (assumed)" so a report can say so.
- An adapter with its own `answer_rows(example, target)` (token classification: the explained
  token) decides for itself.

Whether a classifier is decoder-only is read from the attention the model computed, not from
its class name: causal attention (every layer's strictly upper triangle zero) means it is.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..errors import CheckpointError

RULES = ("first", "last", "mean")
ASSUMED = " (assumed)"
# Causal masks add a large negative number before the softmax, so masked weights are 0 to the
# last bit (exp underflows); 1e-6 leaves room for fp16/bf16 maps and nothing an encoder gives.
CAUSAL_TOLERANCE = 1e-6


def is_causal(attentions: Sequence[torch.Tensor]) -> bool:
    """Return True when every layer's map (.., T, T) puts no weight above the diagonal (T > 1)."""
    if not attentions or attentions[0].shape[-1] < 2:
        return False
    for a in attentions:
        upper = torch.triu(a.detach().float(), diagonal=1)  # (B, H, T, T): a query reading a later key
        if float(upper.abs().max()) > CAUSAL_TOLERANCE:
            return False
    return True


def last_non_pad(ids: Sequence[int], pad_token_id: int | None) -> int:
    """Return the rightmost position whose id is not the pad id (the last position without one).

    As transformers' decoder-only classifiers pool: argmax of position x (id != pad), which is
    0 for an all-pad row.
    """
    if pad_token_id is None:
        return len(ids) - 1
    keep = [t for t, i in enumerate(ids) if int(i) != int(pad_token_id)]
    return keep[-1] if keep else 0


def classifier_row(config: Any, ids: Sequence[int], causal: bool) -> int:
    """Return the token position a sequence classifier answers from (see the module docstring)."""
    # Causal first: GPT-2's config carries summary_type="cls_index" for GPT2DoubleHeadsModel,
    # which its sequence classifier ignores.
    if causal:
        return last_non_pad(ids, getattr(config, "pad_token_id", None))
    if getattr(config, "summary_type", None) == "last":
        return len(ids) - 1
    return 0


def lm_rows(length: int, need: int) -> tuple[int, ...]:
    """Return the rows that predict a causal LM target: `need` tokens after a context of `length`."""
    return tuple(range(length - 1, length - 1 + need))


def check_rule(rule: Any) -> str | None:
    """Return a stated answer rule ("first" | "last" | "mean") or None; raise CheckpointError for anything else."""
    if rule is None:
        return None
    if not isinstance(rule, str) or rule.strip().lower() not in RULES:
        raise CheckpointError(f"answer_row is {rule!r}: use one of {', '.join(RULES)} (the token(s) the model's head reads)")
    return rule.strip().lower()


def _is_own(model: Any) -> bool:
    from .torch_shim import OwnTextModel

    return isinstance(model, OwnTextModel)


def answer_rule(adapter: Any, attentions: Sequence[torch.Tensor]) -> str:
    """Return the rule the answering rows follow, as reported in extras["answer_rule"].

    "first", "last", "mean" (stated or known from the architecture), "last non-pad" (decoder-only
    HF classifiers), "each predicted token" (causal LMs), "the adapter's" (an adapter's own
    answer_rows), or "first (assumed)" / "last (assumed)" for an own model that stated none.
    """
    if callable(getattr(adapter, "answer_rows", None)):
        return "the adapter's"
    if adapter.family == "causal-lm":
        return "each predicted token"
    model = adapter.model
    causal = is_causal(attentions)
    if _is_own(model):
        stated = check_rule(getattr(model, "answer_row", None))
        return stated or ("last" if causal else "first") + ASSUMED
    if causal:
        return "last non-pad"
    return "last" if getattr(getattr(model, "config", None), "summary_type", None) == "last" else "first"


def combines_by_mean(rule: str) -> bool:
    """Return True when the rule's rows are averaged (a mean-pooled head), False when each row is its own output."""
    return rule.removesuffix(ASSUMED) == "mean"


def answer_rows(adapter: Any, example: Any, target: Any, attentions: Sequence[torch.Tensor]) -> tuple[int, ...]:
    """Return the attention rows whose outputs make up the target's output, in step order.

    One row for a classifier or one generated token; one per generated token for a causal LM's
    whole continuation; every row for a mean-pooled own model. Uses only the adapter's public
    attributes: its own `answer_rows` if it has one, its family, its model's config (or an own
    model's stated rule), the example's token ids and (causal LMs) `adapter.context(state, target)`.
    """
    own = getattr(adapter, "answer_rows", None)
    if callable(own):
        return tuple(int(q) for q in own(example, target))
    if adapter.family == "causal-lm":
        ctx = adapter.context(example.state, target)
        return lm_rows(ctx.length, ctx.need)
    t = attentions[0].shape[-1]
    # the ids the attention pass ran on; without them, a row per token of the maps (no pad known)
    ids = list(getattr(example.state, "ids", None) or range(-1, -1 - t, -1))
    config = getattr(adapter.model, "config", None)
    if _is_own(adapter.model):
        rule = answer_rule(adapter, attentions).removesuffix(ASSUMED)
        if rule == "mean":
            return tuple(range(t))
        return (t - 1,) if rule == "last" else (0,)
    return (classifier_row(config, ids, is_causal(attentions)),)
