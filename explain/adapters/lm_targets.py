"""Causal LM target specs: which continuation steps a spec names (see `explain.adapters.targets`).

A string is a generated token's text or a keyword; ``step:N`` / ``#N`` is step N (negative
counts from the end); ``token:TEXT`` is a token's text even when it spells a keyword; a Python
int is a step. A digit string is never a step: generated tokens change from input to input, so
"2" must mean the same thing (the token "2") for every input of a run.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import TargetError
from .targets import INDEX_PREFIXES, as_list, is_int, parse_int, strip_prefix

STEP_WORDS = ("steps", "tokens")  # every continuation token, without the whole continuation
WHOLE_WORDS = ("sum", "continuation", "whole")  # the whole continuation only
ALL_WORDS = ("all",)
STEP_PREFIXES = ("step:", *INDEX_PREFIXES)
TOKEN_PREFIX = "token:"
_HELP = "a token's text, 'step:N' (0 = first token, -1 = last), 'steps', 'sum' (whole continuation) or 'all'"


def check_spec(spec: Any) -> None:
    """Raise TargetError now for a target spec that can never name a step (wrong type, bad step:N)."""
    for s in as_list(spec):
        if s is None or isinstance(s, bool) or not (is_int(s) or isinstance(s, str)):
            raise TargetError(f"target {s!r} is not understood: for a causal LM give {_HELP}")
        if isinstance(s, str):
            raw = strip_prefix(s.strip(), STEP_PREFIXES)
            if raw is not None:
                parse_int(raw, "target step")


def select_steps(spec: Any, labels: Sequence[str]) -> list[int | None]:
    """Return the steps a target spec names, in order (None = the whole continuation)."""
    n = len(labels)
    if spec is None:
        return [*range(n), None]
    check_spec(spec)
    chosen: list[int | None] = []
    for s in as_list(spec):
        for step in _one_spec(s, labels):
            if step not in chosen:
                chosen.append(step)
    return chosen


def _one_spec(s: int | str, labels: Sequence[str]) -> list[int | None]:
    n = len(labels)
    if is_int(s):
        return [_step(int(s), n)]
    text = str(s).strip()
    raw = strip_prefix(text, STEP_PREFIXES)
    if raw is not None:
        return [_step(parse_int(raw, "target step"), n)]
    token = strip_prefix(text, (TOKEN_PREFIX,))
    if token is None:
        low = text.lower()
        if low in ALL_WORDS:
            return [*range(n), None]
        if low in STEP_WORDS:
            return list(range(n))
        if low in WHOLE_WORDS:
            return [None]
    wanted = token if token is not None else text
    exact = str(s)[len(TOKEN_PREFIX):] if token is not None else str(s)
    found = [k for k, label in enumerate(labels) if label == exact or label.strip() == wanted]
    if found:
        return list(found)
    shown = ", ".join(repr(x) for x in labels[:20]) + (" ..." if n > 20 else "")
    hint = f"; for step {wanted} write 'step:{wanted}'" if wanted.lstrip("-").isdigit() else ""
    raise TargetError(f"unknown target {wanted!r}: no continuation token has that text (tokens: {shown}){hint}; use {_HELP}")


def _step(k: int, n: int) -> int:
    if -n <= k < n:
        return k % n
    raise TargetError(f"target step {k} is out of range: the continuation has {n} tokens (steps 0..{n - 1} or -{n}..-1)")
