"""Read the inputs a user names on the command line: texts, prompts, input files, images."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from explain.engine import InvalidInput
from explain.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def read_input_file(path: str, column: str | None = None) -> list[Any]:
    """Return the inputs of a .txt (one per line), .jsonl or .csv file; bad lines become InvalidInput."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file not found: {path}")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); re-save it as UTF-8") from e
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        return [_jsonl_item(line, n, column, path) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if suffix == ".csv":
        return _csv_items(text, column or "text", path)
    return [line for line in text.splitlines() if line.strip()]


def _jsonl_item(line: str, n: int, column: str | None, path: str) -> Any:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as e:
        return InvalidInput(f"{path} line {n} is not valid JSON ({e.msg})", text=line[:200])
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        return InvalidInput(f"{path} line {n}: expected a JSON object or string", text=line[:200])
    if "prompt" in doc and column is None:  # causal LMs: a prompt with an optional continuation
        return {k: doc[k] for k in ("prompt", "continuation") if k in doc}
    key = column or next((k for k in ("text", "sentence", "input", "image") if k in doc), None)
    if key is None or key not in doc:
        wanted = column or "text"
        return InvalidInput(f"{path} line {n} has no {wanted!r} field (use --column)", text=line[:200])
    if not isinstance(doc[key], str):
        return InvalidInput(f"{path} line {n}: field {key!r} is not a string", text=line[:200])
    return doc[key]


def _csv_items(text: str, column: str, path: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or column not in reader.fieldnames:
        raise InputError(f"{path} has no column {column!r} (columns: {', '.join(reader.fieldnames or [])}); use --column")
    items: list[Any] = []
    try:
        for n, row in enumerate(reader, 2):
            value = row.get(column)
            if value is None or None in row:
                items.append(InvalidInput(f"{path} line {n} has {len(row) - (None in row)} fields, not the header's"))
            else:
                items.append(value)
    except csv.Error as e:
        items.append(InvalidInput(f"{path}: malformed CSV ({e})"))
    return items


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
