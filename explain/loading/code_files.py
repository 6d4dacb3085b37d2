"""Python files from a checkpoint folder or a user's project: imported under names of their own."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..errors import CheckpointError


def import_file(path: Path) -> Any:
    """Import a Python file under a name of its own (its folder on sys.path meanwhile); return the module.

    The name carries a digest of the file's path and bytes, so two folders' `model.py` never
    collide, and the same unchanged file is one module (its classes pickle and compare equal).
    """
    if not path.is_file():
        raise CheckpointError(f"architecture file not found: {path}")
    digest = hashlib.sha256(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:16]
    key = f"explain_own_{digest}_{path.stem}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise CheckpointError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod  # dataclasses and pickling look a class's module up by name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # the user's file may raise anything on import
        sys.modules.pop(key, None)
        raise CheckpointError(f"importing {path.name} failed: {first_line(e)}") from e
    finally:
        sys.path.remove(str(path.parent))
    return mod


def inside(folder: Path, name: str, what: str) -> Path:
    """Return folder/name, refusing a path that leaves the folder."""
    p = (folder / name).resolve()
    if folder.resolve() not in (p, *p.parents):
        raise CheckpointError(f"{what} {name!r} points outside the checkpoint folder {folder}")
    return p


def first_line(e: BaseException, limit: int = 300) -> str:
    """Return the first line of an exception's text (or its type's name), cut at `limit` characters."""
    text = " ".join(str(e).strip().splitlines()[:1]) or type(e).__name__
    return text if len(text) < limit else text[:limit] + "..."
