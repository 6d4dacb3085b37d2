"""The sharded results folder: many results files written by workers, read back as one Results.

Layout (format "explain.sharded/1"), under OUT (a local folder or any URI pyarrow.fs opens):

    OUT/manifest.json                      the run: model, run info, engine, counts, shard list
    OUT/shards/part-AAAAAAAAA-BBBBBBBBB.rN.json
                                           an ordinary explain results file holding inputs
                                           AAAAAAAAA..BBBBBBBBB (global numbers) of attempt N
    OUT/shards/part-AAAAAAAAA-BBBBBBBBB.rN.arrays-<hash>.npz
                                           its large arrays (pixel and attention maps), as
                                           beside any results file; written before the shard
    OUT/report.html                        the report (optional)

Every shard is written atomically (temporary name, then rename; its arrays file first), so an
interrupted run leaves only complete shards; a shard's arrays are read lazily, when used. `--resume` starts attempt N+1 and explains only inputs that no shard holds
(or that failed); when shards overlap, each input is taken from its newest attempt.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

from ..errors import InputError
from .arrays import ArrayFile
from .explanation import Explanation, Failure, InputRecord, Results
from .results_io import encode, loads

LAYOUT = "explain.sharded/1"
MANIFEST = "manifest.json"
SHARDS = "shards"
INFLIGHT = "inflight"  # input-N files: how often a worker died while explaining input N
_SHARD_NAME = re.compile(r"^part-(\d+)-(\d+)\.r(\d+)\.json$")
_ARRAYS_NAME = re.compile(r"^part-\d+-\d+\.r\d+\.arrays-[0-9a-f]+\.npz$")


class Store:
    """Reads and writes files under a root that is a local folder or a pyarrow filesystem URI."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = str(root)
        self.uri = root
        if "://" in root:  # s3://, gs://, hdfs://, file:// ...: through pyarrow.fs
            from pyarrow import fs

            try:
                self._fs, self._base = fs.FileSystem.from_uri(root)
            except Exception as e:  # pyarrow raises ArrowInvalid / OSError for unknown schemes
                raise InputError(f"cannot open {root}: {e}") from e
            self._base = self._base.rstrip("/")
            self.local: Path | None = None
        else:
            self.local = Path(root).expanduser().resolve()
            self._base = str(self.local)

    def path(self, rel: str) -> str:
        """Return the full path (or URI path) of `rel` under the root."""
        return f"{self._base}/{rel}" if rel else self._base

    def show(self, rel: str) -> str:
        """Return `rel` under the root as the user named it (a local path, or the URI)."""
        return str(self.local / rel) if self.local is not None else f"{self.uri.rstrip('/')}/{rel}"

    def exists(self, rel: str) -> bool:
        """Return True when the file `rel` exists."""
        if self.local is not None:
            return (self.local / rel).is_file()
        from pyarrow import fs

        return self._fs.get_file_info(self.path(rel)).type == fs.FileType.File

    def open_input(self, rel: str) -> BinaryIO:
        """Return file `rel` opened for reading, seekable (an arrays file is read member by member)."""
        if self.local is not None:
            return open(self.local / rel, "rb")
        return self._fs.open_input_file(self.path(rel))

    def read_text(self, rel: str) -> str:
        """Return the text of file `rel`."""
        if self.local is not None:
            return (self.local / rel).read_text(encoding="utf-8")
        with self._fs.open_input_stream(self.path(rel)) as f:
            return bytes(f.read()).decode("utf-8")

    def write_bytes(self, rel: str, data: bytes, sync: bool = True) -> None:
        """Write file `rel` atomically: a temporary name in the same folder, then a rename
        (`sync`: flushed to the disk first, so it survives a machine crash too)."""
        folder, _, name = rel.rpartition("/")
        tmp = f"{folder + '/' if folder else ''}.{name}.{uuid.uuid4().hex[:8]}.tmp"
        if self.local is not None:
            (self.local / tmp).parent.mkdir(parents=True, exist_ok=True)
            with open(self.local / tmp, "wb") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(self.local / tmp, self.local / rel)
            return
        self._fs.create_dir(self.path(folder), recursive=True)  # object stores: a no-op
        with self._fs.open_output_stream(self.path(tmp)) as f:
            f.write(data)
        self._fs.move(self.path(tmp), self.path(rel))

    def delete(self, rel: str) -> None:
        """Remove file `rel` if it exists."""
        if self.local is not None:
            (self.local / rel).unlink(missing_ok=True)
        elif self.exists(rel):
            self._fs.delete_file(self.path(rel))

    def list(self, folder: str) -> list[str]:
        """Return the names of the files directly in `folder` (none when it does not exist)."""
        if self.local is not None:
            d = self.local / folder
            return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []
        from pyarrow import fs

        infos = self._fs.get_file_info(fs.FileSelector(self.path(folder), allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == fs.FileType.File)


def shard_name(first: int, last: int, attempt: int) -> str:
    """Return the relative path of the shard holding inputs first..last of `attempt`."""
    return f"{SHARDS}/part-{first:09d}-{last:09d}.r{attempt}.json"


def write_shard(store: Store, results: Results, attempt: int) -> str:
    """Save one shard's Results as an explain results file (its arrays file first); return its relative path."""
    indices = [r.index for r in results.inputs]
    name = shard_name(min(indices), max(indices), attempt)
    text, arrays, data = encode(results, Path(name).stem)
    if arrays is not None and data is not None:
        store.write_bytes(f"{SHARDS}/{arrays}", data)
    store.write_bytes(name, text.encode("utf-8"))
    return name


def clear(store: Store) -> int:
    """Remove a sharded run's own files (shards, manifest, report) under `store`; return how many."""
    names = [rel for *_, rel in shard_files(store)] + [n for n in (MANIFEST, "report.html") if store.exists(n)]
    names += [f"{SHARDS}/{n}" for n in store.list(SHARDS) if _ARRAYS_NAME.match(n)]
    names += [f"{INFLIGHT}/{n}" for n in store.list(INFLIGHT)]
    for rel in names:
        store.delete(rel)
    return len(names)


def is_sharded(path: str | os.PathLike[str]) -> bool:
    """Return True when `path` is a sharded results folder (it holds manifest.json)."""
    text = str(path)
    if "://" in text:
        return Store(text).exists(MANIFEST)
    p = Path(text)
    return p.is_dir() and (p / MANIFEST).is_file()


def read_manifest(store: Store) -> dict[str, Any]:
    """Return the manifest of a sharded folder; raise InputError when it is missing or not one."""
    try:
        doc = json.loads(store.read_text(MANIFEST))
    except (FileNotFoundError, OSError) as e:
        raise InputError(f"no sharded results at {store.uri} (no {MANIFEST})") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{store.show(MANIFEST)} is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("layout") != LAYOUT:
        raise InputError(f"{store.show(MANIFEST)} is not an {LAYOUT} manifest")
    return doc


def write_manifest(store: Store, manifest: dict[str, Any]) -> None:
    """Write manifest.json atomically (sorted keys)."""
    store.write_bytes(MANIFEST, (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode("utf-8"))


def shard_files(store: Store) -> list[tuple[int, int, int, str]]:
    """Return (first, last, attempt, relative path) of every complete shard, in input order."""
    found = []
    for name in store.list(SHARDS):
        m = _SHARD_NAME.match(name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), f"{SHARDS}/{name}"))
    return sorted(found)


def iter_shards(path: str | os.PathLike[str]) -> Iterator[Results]:
    """Yield each shard's Results in input order (one shard in memory at a time)."""
    store = Store(path)
    for _, _, _, rel in shard_files(store):
        yield _load(store, rel)


def _load(store: Store, rel: str) -> Results:
    folder = rel.rpartition("/")[0]

    def arrays(meta: Mapping[str, Any]) -> ArrayFile:
        name = str(meta.get("file", ""))
        if not name or "/" in name:
            raise ValueError(f"'arrays' must name a file beside the shard, got {name!r}")
        where = f"{folder}/{name}" if folder else name
        # Opened per read: a run of thousands of shards must not hold a handle for each.
        return ArrayFile(functools.partial(store.open_input, where), store.show(where), meta, keep_open=False)

    try:
        return loads(store.read_text(rel), arrays)
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{store.show(rel)} is not a valid explain results file: {e}") from e


def open_sharded(path: str | os.PathLike[str]) -> Results:
    """Return the Results of a sharded folder merged into one, as an in-process run would give them.

    Inputs, explanations and failures are in input order; an input held by several shards (a
    resumed run re-explained it) is taken from the newest attempt. `run` is the manifest's.
    """
    store = Store(path)
    manifest = read_manifest(store)
    files = shard_files(store)
    newest: dict[int, int] = {}  # input -> attempt that holds its final answer
    loaded: list[tuple[int, Results]] = []
    for _, _, attempt, rel in files:
        part = _load(store, rel)
        loaded.append((attempt, part))
        for r in part.inputs:
            newest[r.index] = max(newest.get(r.index, -1), attempt)
    if not loaded:
        raise InputError(f"{store.uri} holds no finished shards yet")
    inputs: list[InputRecord] = []
    explanations: list[Explanation] = []
    failures: list[Failure] = []
    for attempt, part in loaded:
        keep = {r.index for r in part.inputs if newest[r.index] == attempt}
        inputs.extend(r for r in part.inputs if r.index in keep)
        explanations.extend(e for e in part if e.input in keep)
        failures.extend(f for f in part.failures if f.input in keep)
    inputs.sort(key=lambda r: r.index)
    explanations.sort(key=lambda e: e.input)  # stable: method and target order kept within an input
    failures.sort(key=lambda f: f.input)
    model = loaded[0][1].model
    run = dict(manifest.get("run") or loaded[0][1].run)
    return Results(explanations, model=model, inputs=inputs, failures=failures, run=run)
