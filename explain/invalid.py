"""InvalidInput: the stand-in for an input that could not even be read, shared by readers and the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InvalidInput:
    """A placeholder for an input that could not even be read (e.g. a malformed JSONL line)."""

    error: str
    text: str | None = None
