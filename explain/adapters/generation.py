"""What a causal LM explains: a prompt, its continuation token by token, and its target outputs.

A prompt and its continuation (generated greedily or given) are one token sequence. Each
continuation token is a target whose context is everything before it; the whole continuation
is one more target whose context is the prompt. Perturbed contexts are scored by forwarding
the perturbed context *followed by the rest of the continuation*: one forward gives the
log-probability of every later continuation token at once, and a prefix cache (one per input)
hands those values to the later steps, the whole-continuation target and the other methods.

This module holds a target's context and output; the jobs around it live in their own
modules: lm_sequence (the Generation and Context data), lm_targets (target specs), lm_words
(word regrouping, a context's features) and lm_decoding (greedy decoding, the prefix cache).
"""

from __future__ import annotations

import numpy as np

from ..errors import TargetError
from ..results.explanation import Target

# The jobs live in their own modules; their names are re-exported here for existing callers.
from .lm_decoding import PrefixScorer, greedy
from .lm_sequence import Context, Generation
from .lm_targets import ALL_WORDS, STEP_WORDS, WHOLE_WORDS, check_spec, select_steps
from .words import Units
from .lm_words import context_units, continuation_ids, decoded_labels, group_sequence, strip_trailing_special

__all__ = [
    "ALL_WORDS", "STEP_WORDS", "WHOLE_WORDS", "Context", "Generation", "PrefixScorer", "Units", "check_spec",
    "context_units", "continuation_ids", "decoded_labels", "greedy", "group_sequence", "output_values",
    "select_steps", "strip_trailing_special", "target_context",
]


def target_context(gen: Generation, target: Target) -> Context:
    """Return the context of a target of `gen`; raise TargetError for a target of another input."""
    n = len(gen.continuation)
    if target.position is None and target.index == -1:
        return Context(length=gen.n_prompt, step=0, need=n)
    k = (target.position if target.position is not None else -1) - gen.n_prompt
    if not 0 <= k < n or gen.continuation[k] != target.index:
        raise TargetError(f"target {target.label!r} at position {target.position} is not a token of this continuation")
    return Context(length=gen.n_prompt + k, step=k, need=1)


def output_values(gen: Generation, ctx: Context, entries: np.ndarray, output: str) -> np.ndarray:
    """Return (B,) target outputs from (B, need, K+1) scored entries (see PrefixScorer.entries)."""
    cols = [gen.columns[i] for i in gen.continuation[ctx.step : ctx.step + ctx.need]]
    logits = entries[:, np.arange(ctx.need), cols].astype(np.float64)  # (B, need)
    if output == "logit":
        return logits.sum(-1)  # whole continuation: the sum of its tokens' logits
    logp = (logits - entries[:, :, -1]).sum(-1)
    return np.exp(logp) if output == "probability" else logp
