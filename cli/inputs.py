"""Read the inputs a user names on the command line: texts, prompts, input files, images.

The file formats live in explain.distributed.sources, shared with the Ray engine's readers so
that both engines read the same inputs and record the same failures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from explain.distributed.sources import read_file
from explain.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def read_input_file(path: str, column: str | None = None, pair_column: str | None = None) -> list[Any]:
    """Return the inputs of a .txt (one per line), .jsonl, .csv or .parquet file; bad lines become InvalidInput."""
    return read_file(path, column, pair_column)


def expand_images(paths: list[str]) -> list[str]:
    """Return image paths, with folders replaced by the image files they hold (sorted)."""
    out: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise InputError(f"folder {raw} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.extend(found)
        else:  # a missing file fails alone, recorded with the others' results
            out.append(str(p))
    return out
