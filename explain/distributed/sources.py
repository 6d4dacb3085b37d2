"""Input sources for both engines: the file formats, and the plan of a run's inputs as parts.

One implementation of every format (.txt, .jsonl, .csv, .parquet, image folders) serves the
in-process path (`cli.inputs`) and the Ray path, so both read exactly the same inputs and
record the same failures for bad lines. A Ray run never ships its inputs through the driver:
the driver plans `Part`s (a file with its first global input number and its count, or a short
list of literal items) and Ray Data's read tasks read the files where they run.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..invalid import InvalidInput
from ..errors import InputError

FILE_SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")


def read_file(path: str, column: str | None = None, pair_column: str | None = None) -> list[Any]:
    """Return the inputs of a .txt (one per line), .jsonl, .csv or .parquet file; bad lines become InvalidInput.

    Sentence pairs: a .jsonl object with a "text_pair" field (or the `pair_column` field) is the
    input {"text": ..., "text_pair": ...}; in a .csv or .parquet file `pair_column` names the
    second text's column. A .jsonl "word" field (a word number or a list of them) is kept, as
    {"text": ..., "word": N}, for token classifiers.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file not found: {path}")
    if p.suffix.lower() == ".parquet":
        return _parquet_items(path, column or "text", pair_column)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); re-save it as UTF-8") from e
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        return [_jsonl_item(line, n, column, path, pair_column) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if suffix == ".csv":
        return _csv_items(text, column or "text", path, pair_column)
    if pair_column is not None:
        raise InputError(f"{path}: --pair-column needs a .csv, .jsonl or .parquet file (a .txt line is one text)")
    return [line for line in text.splitlines() if line.strip()]


def _jsonl_item(line: str, n: int, column: str | None, path: str, pair_column: str | None = None) -> Any:
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
    pair_key = pair_column or "text_pair"
    if pair_column is not None and pair_key not in doc:
        return InvalidInput(f"{path} line {n} has no {pair_key!r} field (the --pair-column)", text=line[:200])
    if pair_key in doc:
        if not isinstance(doc[pair_key], str):
            return InvalidInput(f"{path} line {n}: field {pair_key!r} (the pair's second text) is not a string", text=line[:200])
        return {"text": doc[key], "text_pair": doc[pair_key]}
    if "word" in doc:  # token classifiers: the word(s) to explain
        return {"text": doc[key], "word": doc["word"]}
    return doc[key]


def _csv_items(text: str, column: str, path: str, pair_column: str | None = None) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text))
    for name, flag in ((column, "--column"), (pair_column, "--pair-column")):
        if name is not None and (reader.fieldnames is None or name not in reader.fieldnames):
            raise InputError(f"{path} has no column {name!r} (columns: {', '.join(reader.fieldnames or [])}); use {flag}")
    items: list[Any] = []
    try:
        for n, row in enumerate(reader, 2):
            value = row.get(column)
            second = row.get(pair_column) if pair_column is not None else ""
            if value is None or second is None or None in row:
                items.append(InvalidInput(f"{path} line {n} has {len(row) - (None in row)} fields, not the header's"))
            elif pair_column is not None:
                items.append({"text": value, "text_pair": second})
            else:
                items.append(value)
    except csv.Error as e:
        items.append(InvalidInput(f"{path}: malformed CSV ({e})"))
    return items


def _parquet_items(path: str, column: str, pair_column: str | None = None) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f'reading {path} needs pyarrow: pip install "explain[distributed]"') from None

    try:
        table = pq.read_table(path, columns=[column] + ([pair_column] if pair_column else []))
    except KeyError:  # pyarrow names a missing column with a KeyError
        names = pq.read_schema(path).names
        missing = column if column not in names else pair_column
        flag = "--column" if missing == column else "--pair-column"
        raise InputError(f"{path} has no column {missing!r} (columns: {', '.join(names)}); use {flag}") from None
    except Exception as e:  # pyarrow raises ArrowInvalid and friends for files that are not Parquet
        raise InputError(f"cannot read {path} as Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    texts = table.column(column).to_pylist()
    seconds = table.column(pair_column).to_pylist() if pair_column else [None] * len(texts)
    out: list[Any] = []
    for n, (v, w) in enumerate(zip(texts, seconds), 1):
        if not isinstance(v, str):
            out.append(InvalidInput(f"{path} row {n}: column {column!r} holds {type(v).__name__}, not a string"))
        elif pair_column is None:
            out.append(v)
        elif not isinstance(w, str):
            out.append(InvalidInput(f"{path} row {n}: column {pair_column!r} holds {type(w).__name__}, not a string"))
        else:
            out.append({"text": v, "text_pair": w})
    return out


@dataclass(frozen=True)
class Part:
    """A contiguous run of a job's inputs: a file read where it is used, or literal items."""

    first: int  # the global number of its first input
    count: int
    path: str | None = None
    column: str | None = None
    items: tuple[Any, ...] = ()
    pair_column: str | None = None

    def read(self) -> list[Any]:
        """Return this part's inputs (files are read now, with the same rules as in-process)."""
        return list(self.items) if self.path is None else read_file(self.path, self.column, self.pair_column)


@dataclass(frozen=True)
class FileInput:
    """An input file named by the user, read where it is used."""

    path: str
    column: str | None = None
    pair_column: str | None = None  # the second text's column of sentence pairs


def plan(groups: Sequence[Sequence[Any] | FileInput]) -> list[Part]:
    """Return Parts numbering the inputs in order: each group is a list of items or a FileInput.

    Files are read once here to count their inputs (and to raise InputError for an unreadable
    file or a missing column before any worker starts); nothing read is kept.
    """
    parts: list[Part] = []
    first = 0
    for group in groups:
        if isinstance(group, FileInput):
            count = _count(group.path, group.column, group.pair_column)
            part = Part(first=first, count=count, path=group.path, column=group.column, pair_column=group.pair_column)
        else:
            part = Part(first=first, count=len(group), items=tuple(group))
        if part.count:
            parts.append(part)
        first += part.count
    return parts


def _count(path: str, column: str | None, pair_column: str | None = None) -> int:
    if Path(path).suffix.lower() == ".parquet":  # the footer alone: names and row count
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path)
        except Exception as e:  # ArrowInvalid for a file that is not Parquet
            raise InputError(f"cannot read {path} as Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
        for name, flag in ((column or "text", "--column"), (pair_column, "--pair-column")):
            if name is not None and name not in meta.schema_arrow.names:
                names = ", ".join(meta.schema_arrow.names)
                raise InputError(f"{path} has no column {name!r} (columns: {names}); use {flag}")
        return int(meta.metadata.num_rows)
    return len(read_file(path, column, pair_column))


def encode_item(raw: Any) -> str:
    """Return a JSON string carrying one raw input (text, prompt dict or InvalidInput) to a worker."""
    if isinstance(raw, InvalidInput):
        return json.dumps({"invalid": raw.error, "text": raw.text})
    return json.dumps({"value": str(raw) if isinstance(raw, Path) else raw})


def decode_item(text: str) -> Any:
    """Return the raw input that `encode_item` encoded."""
    doc = json.loads(text)
    if "invalid" in doc:
        return InvalidInput(doc["invalid"], text=doc.get("text"))
    return doc["value"]


def rows(part: Part, skip: frozenset[int] | set[int], chunk: int) -> Iterator[tuple[list[int], list[str]]]:
    """Yield (global indices, encoded items) of a part, leaving out `skip`.

    Chunks end at global multiples of `chunk`, so a fresh run's shards are [k*chunk, (k+1)*chunk).
    """
    items = part.read()
    if len(items) != part.count:
        raise InputError(f"{part.path} changed while the run was planned ({part.count} inputs, now {len(items)})")
    index: list[int] = []
    encoded: list[str] = []
    for i, raw in enumerate(items, start=part.first):
        if i in skip:
            continue
        index.append(i)
        encoded.append(encode_item(raw))
        if (i + 1) % chunk == 0:
            yield index, encoded
            index, encoded = [], []
    if index:
        yield index, encoded
