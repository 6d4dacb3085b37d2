"""Attention maps with two aggregated views that give a score per word.

- every layer and head's attention matrix, token- and word-level (rows are queries);
- attention rollout (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928): per layer the
  head-mean attention mixed half and half with the identity (the residual stream) and
  row-normalised, multiplied through the layers, first layer rightmost;
- gradient-weighted relevance (Chefer, Gur & Wolf 2021, "Generic Attention-model
  Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers",
  https://arxiv.org/abs/2103.15679, eqs. 5-6 for self-attention): R = I, then per layer
  R <- R + mean_h((dy/dA * A)^+) R. Not the LRP-based rule of their earlier 2012.09838.
  It is class-specific, unlike raw attention or rollout.

A word's score is the relevance (identity removed: a token is no cause of itself) that the
answering row gives the word's tokens. Which row answers is `explain.adapters.answer_row`'s
rule: [CLS] for encoders, the last non-pad token for decoder-only classifiers, the position
before the predicted token for causal LMs, the rule an own model states (extras["answer_rule"]
names it, "(assumed)" when the model stated none). A causal LM's whole continuation is the sum
of every generated token's log-probability, so its relevance is the sum, over generated tokens,
of each token's own relevance row (each from the gradient of that token's log-probability
alone). A mean-pooled head has one output read from every row: its relevance is the mean of
those rows of that output's relevance.

Word-level matrices average a word's query rows and sum its key columns, so rows still sum to
the attention the word's tokens pay to words (special tokens excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adapters.answer_row import answer_rows, answer_rule, combines_by_mean
from ..adapters.attention_impl import recording_logits
from ..adapters.base import Adapter, AttentionView, Example
from ..errors import MethodError
from ..results.explanation import Explanation, Target
from .registry import register
from .base import Cost, Method, setting

# Split outputs must add up to the adapter's output; float32 log-softmax sums agree far closer.
SPLIT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class AttentionSettings:
    """Settings of the attention maps."""

    max_values: int = setting(
        2_000_000, "largest layers x heads x rows x columns kept per head (token and word level each); above it only the mean over heads is stored"
    )


def rollout(att: torch.Tensor) -> torch.Tensor:
    """Return attention rollout (T, T) from (L, H, T, T) attention: residual-mixed head means."""
    eye = torch.eye(att.shape[-1], dtype=att.dtype, device=att.device)
    result = eye
    for layer in att:  # (H, T, T), first layer first
        a = 0.5 * layer.mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result


def relevance(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Return the relevance matrix (T, T) of arXiv 2103.15679 from attention and its gradients (L, H, T, T)."""
    return torch.eye(att.shape[-1], dtype=att.dtype, device=att.device) + relevance_excess(att, grads)


def relevance_excess(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Return relevance minus the identity (T, T): what each token owes the others, no self-credit.

    Kept as S = R - I throughout (R <- R + cam R is S <- S + cam + cam S), so a small excess on
    the diagonal is not lost to float32 rounding of 1 + x, as subtracting I at the end would.
    """
    s = torch.zeros(att.shape[-1], att.shape[-1], dtype=att.dtype, device=att.device)
    for a, g in zip(att, grads):
        cam = (g * a).clamp(min=0).mean(0)  # (T, T) head mean of the positive grad x attention
        s = s + cam + cam @ s
    return s


def to_features(m: torch.Tensor, groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Return (..., n, n) from token-level (..., T, T): query rows averaged, key columns summed."""
    t = m.shape[-1]
    rows = torch.zeros(len(groups), t, dtype=m.dtype)
    cols = torch.zeros(t, len(groups), dtype=m.dtype)
    for i, g in enumerate(groups):
        rows[i, list(g)] = 1.0 / len(g)
        cols[list(g), i] = 1.0
    return rows @ m @ cols


def sum_columns(v: torch.Tensor, groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Return (..., n) from (..., T): each feature's token columns summed."""
    return torch.stack([v[..., list(g)].sum(-1) for g in groups], -1)


@dataclass
class Capture:
    """One attention pass: the maps, the answering rows and each row's relevance row."""

    view: AttentionView
    attention: torch.Tensor  # (L, H, T, T) float32 on the CPU
    rows: tuple[int, ...]  # the answering rows, one per output summed into the target's
    relevance_rows: torch.Tensor  # (n, T): row rows[k] of the relevance of output k (or of the one output), identity removed
    split: str  # "one output", "split logits" or "step views": how per-row outputs were obtained
    rule: str = "first"  # explain.adapters.answer_row.answer_rule
    combine: str = "sum"  # how relevance_rows make the answer's relevance: "sum" (one output per row) or "mean" (one output read from every row)


def n_outputs(adapter: Adapter, example: Example, target: Target) -> int:
    """Return how many per-token outputs the target's output sums (causal LM whole continuation: all)."""
    if adapter.family == "causal-lm" and hasattr(adapter, "context"):
        return int(adapter.context(example.state, target).need)
    return 1


def _relevance_rows(
    att_list: list[torch.Tensor], outputs: torch.Tensor, rows: tuple[int, ...], chunk: int, every: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Return (n, T): for each output k, row rows[k] of its relevance, from `chunk` gradients per backward.

    With `every` (one output only): the rows `every` of that output's relevance, (len(every), T).
    """
    att = torch.stack([a.detach()[0].float() for a in att_list])  # (L, H, T, T)
    n = outputs.shape[0]
    out: list[torch.Tensor] = []
    for start in range(0, n, chunk):
        sel = list(range(start, min(n, start + chunk)))
        if len(sel) == 1:
            grads = [g.unsqueeze(0) for g in torch.autograd.grad(outputs[sel[0]], att_list, retain_graph=True)]
        else:  # one vmap-batched backward: each output's gradient alone, k at a time
            pick = torch.eye(n, dtype=outputs.dtype, device=outputs.device)[sel]
            grads = list(torch.autograd.grad(outputs, att_list, grad_outputs=pick, retain_graph=True, is_grads_batched=True))
        g = torch.stack([x[:, 0].float() for x in grads], 1)  # (k, L, H, T, T)
        for j, k in enumerate(sel):
            excess = relevance_excess(att, g[j])
            if every is not None:
                return excess[list(every)].cpu()
            out.append(excess[rows[k]].cpu())
    return torch.stack(out)


def capture(adapter: Adapter, example: Example, target: Target, granularity: str, chunk: int) -> Capture:
    """Run the attention pass and return its maps and per-row relevance (`chunk` gradients per backward).

    On out-of-memory the rows it counted are taken back, so a retry at a smaller chunk is not counted twice.
    """
    counted = adapter.runner.rows
    try:
        return _capture(adapter, example, target, granularity, chunk)
    except torch.OutOfMemoryError:
        adapter.runner.rows = counted
        raise


def _capture(adapter: Adapter, example: Example, target: Target, granularity: str, chunk: int) -> Capture:
    with recording_logits(adapter.model) as logits:
        view = adapter.attention_view(example, target, granularity)
    adapter.runner.count(1)
    rows = answer_rows(adapter, example, target, view.attentions)
    rule = answer_rule(adapter, view.attentions)
    att = torch.stack([a.detach()[0].float().cpu() for a in view.attentions])
    if combines_by_mean(rule):  # one output, read from every row
        rel = _relevance_rows(view.attentions, view.output.reshape(1), (0,), 1, every=rows)
        return Capture(view, att, rows, rel, "one output", rule, "mean")
    if len(rows) == 1:
        rel = _relevance_rows(view.attentions, view.output.reshape(1), rows, 1)
        return Capture(view, att, rows, rel, "one output", rule)
    outputs = _split_outputs(example, view, logits, rows)
    if outputs is not None:
        return Capture(view, att, rows, _relevance_rows(view.attentions, outputs, rows, chunk), "split logits", rule)
    # The pass's logits do not give every row (e.g. a model that answers its last position
    # only): one view per generated token, each its own output in its own graph.
    parts = []
    for q, step in zip(rows, _step_targets(adapter, example, rows)):
        v = adapter.attention_view(example, step, granularity)
        adapter.runner.count(1)
        parts.append(_relevance_rows(v.attentions, v.output.reshape(1), (q,), 1))
    return Capture(view, att, rows, torch.cat(parts), "step views", rule)


def _split_outputs(example: Example, view: AttentionView, logits: list[torch.Tensor], rows: tuple[int, ...]) -> torch.Tensor | None:
    """Return (n,) log-probabilities of the token after each row, or None if they do not add up to the view's output."""
    ids = list(getattr(example.state, "ids", ()))
    if len(logits) != 1 or logits[0].dim() != 3 or logits[0].shape[1] <= rows[-1] or len(ids) <= rows[-1] + 1:
        return None
    logp = torch.log_softmax(logits[0][0].float(), dim=-1)  # (T, V)
    pos = torch.tensor(rows, device=logp.device)
    nxt = torch.tensor([ids[q + 1] for q in rows], device=logp.device)
    outputs = logp[pos, nxt]
    total = float(view.output.detach())
    if abs(float(outputs.detach().sum()) - total) > SPLIT_TOLERANCE * max(1.0, abs(total)):
        return None
    return outputs


def _step_targets(adapter: Adapter, example: Example, rows: tuple[int, ...]) -> list[Target]:
    """Return the single-token Targets predicted at `rows` (position q + 1 for row q)."""
    every = adapter.targets(example, "steps")
    by_position = {t.position: t for t in every}
    missing = [q + 1 for q in rows if q + 1 not in by_position]
    if missing:
        raise MethodError(f"no single-token target at positions {missing} to split the continuation's relevance")
    return [by_position[q + 1] for q in rows]


@register
class AttentionMethod(Method):
    """Attention maps, rollout and gradient-weighted relevance of a transformer."""

    name = "attention"
    title = "Attention (maps, rollout, relevance)"
    families = ("text-classifier", "causal-lm")
    Settings = AttentionSettings
    reference = "https://arxiv.org/abs/2103.15679"
    score_units = "other"  # relevance (gradient x attention), not output units

    def explain(
        self, adapter: Adapter, example: Example, target: Target, settings: Any, *, granularity: str, seed: int
    ) -> Explanation:
        """Return per-feature relevance as scores and every map in extras."""
        s: AttentionSettings = settings
        with Cost(adapter) as cost:
            cap = adapter.runner.with_backoff(
                lambda k: capture(adapter, example, target, granularity, k),
                n_outputs(adapter, example, target),
                what="the attention capture pass",
            )
            view, att, rows = cap.view, cap.attention, cap.rows
            groups = view.feature_tokens
            # (T,): summed over the outputs a continuation sums; a mean-pooled head's rows averaged
            token_relevance = cap.relevance_rows.mean(0) if cap.combine == "mean" else cap.relevance_rows.sum(0)
            scores = sum_columns(token_relevance, groups).numpy().astype(np.float32)
            roll = rollout(att)
            extras = self._extras(s, view, att, roll, rows, groups)
            extras["token_relevance"] = token_relevance.numpy().astype(np.float32)
            extras["relevance_split"] = cap.split
            extras["answer_rule"] = cap.rule
        return self.result(
            adapter,
            example,
            target,
            cost,
            features=view.features,
            scores=scores,
            granularity=view.granularity,
            settings=vars(s),
            checks={},
            extras=extras,
        )

    @staticmethod
    def _extras(
        s: AttentionSettings,
        view: AttentionView,
        att: torch.Tensor,
        roll: torch.Tensor,
        rows: tuple[int, ...],
        groups: tuple[tuple[int, ...], ...],
    ) -> dict[str, Any]:
        """Return the maps a report needs: every layer x head at token and feature level, the answering rows."""
        n_layers, n_heads, t, _ = att.shape
        token_heads = att.numel() <= s.max_values
        feature_heads = n_layers * n_heads * len(groups) ** 2 <= s.max_values
        stored = att if token_heads else att.mean(1, keepdim=True)
        features = to_features(att if feature_heads else att.mean(1, keepdim=True), groups)
        answer = att[:, :, list(rows), :].mean(2)  # (L, H, T): the answering rows' attention
        return {
            "attention": features.numpy().astype(np.float32),  # (L, H or 1, n, n)
            "rollout": to_features(roll, groups).numpy().astype(np.float32),
            "token_attention": stored.numpy().astype(np.float32),  # (L, H or 1, T, T)
            "token_rollout": roll.numpy().astype(np.float32),
            "tokens": list(view.tokens),
            "query": int(rows[0]),  # kept for older readers: the first answering row
            "answer_row": int(rows[0]),  # the row that answers (whole continuation: the first of answer_rows)
            "answer_rows": [int(q) for q in rows],
            "answer_token": [view.tokens[q] for q in rows],
            # what the answering row(s) read, per layer and head, summed per feature: the one row
            # a word-level matrix cannot show when the answering token is special ([CLS])
            "answer_attention": sum_columns(answer, groups).numpy().astype(np.float32),  # (L, H, n)
            "answer_rollout": sum_columns(roll[list(rows)].mean(0), groups).numpy().astype(np.float32),
            "heads": "all" if token_heads else "mean",
            "feature_heads": "all" if feature_heads else "mean",
            "feature_tokens": [[view.tokens[t] for t in g] for g in groups],
        }
