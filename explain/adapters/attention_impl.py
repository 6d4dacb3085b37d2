"""Attention weights on demand: SDPA and flash attention return none, so switch to eager briefly."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator



@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Run the block with the model's eager attention (which returns weights), then restore it."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    switch = current not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(current)
