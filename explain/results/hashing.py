"""The content hash that identifies a checkpoint in results files (resume refuses a different one).

One format, 'sha256:' + 16 hex digits, whether the model came from files (their names and
bytes) or from memory (its state dict's names, shapes and values).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Sequence

import torch


def _digest(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return "sha256:" + h.hexdigest()[:16]


def content_hash(files: Sequence[Path]) -> str:
    """Return the hash of checkpoint files: their names and bytes, in name order."""

    def chunks() -> Iterable[bytes]:
        for p in sorted(files, key=lambda x: x.name):
            yield p.name.encode()
            with open(p, "rb") as f:
                yield from iter(lambda: f.read(1 << 20), b"")

    return _digest(chunks())


def state_hash(model: torch.nn.Module) -> str:
    """Return the hash of an in-memory model: its parameter names, shapes and values."""

    def chunks() -> Iterable[bytes]:
        for name, t in sorted(model.state_dict().items()):
            yield name.encode()
            yield str(tuple(t.shape)).encode()
            yield t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()

    return _digest(chunks())
