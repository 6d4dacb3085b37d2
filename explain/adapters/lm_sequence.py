"""A causal LM's prompt + continuation as one token sequence (Generation) and a target's context."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .words import Tokenized


@dataclass
class Generation:
    """A prompt and its continuation as one token sequence, with word grouping and log-probs."""

    tok: Tokenized  # the whole sequence (prompt + continuation); words span both
    n_prompt: int  # prompt tokens, special ones included
    labels: tuple[str, ...]  # each continuation token's text as decoded in place (" meow")
    text: str  # the continuation's text
    logprobs: np.ndarray  # (n,) log p(token_k | everything before it), from one full forward
    cache: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)
    columns: dict[int, int] = field(default_factory=dict)  # continuation vocab id -> cached column

    @property
    def ids(self) -> tuple[int, ...]:
        """Return the token ids of the whole sequence."""
        return self.tok.ids

    @property
    def continuation(self) -> tuple[int, ...]:
        """Return the continuation's token ids."""
        return self.tok.ids[self.n_prompt :]


@dataclass(frozen=True)
class Context:
    """What one target is explained from: its context length, first step and steps scored."""

    length: int  # tokens of context (positions 0..length-1)
    step: int  # first continuation step scored
    need: int  # continuation steps summed (1 for a token, all of them for the whole continuation)
