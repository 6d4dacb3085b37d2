"""The results file: a flat, versioned JSON index that reports and other tools read, and its arrays file.

`save` writes results.json (inputs, targets, words, scores per feature, checks) and, when the
Results hold large arrays (pixel maps, attention maps), one .npz archive beside it that the index
names (see explain/results/arrays.py). `read_file` reads both back, the archive lazily.
`dumps`/`loads` give the same index as one self-contained text, every array inline.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InputError
from .arrays import FLOAT16, INLINE_MAX, ArrayFile, ArrayWriter, LazyExtras, Stored, StoredExplanation, file_name, local_file
from .explanation import Explanation, Failure, InputRecord, ModelInfo, Results, SelfCheck, Target

SCHEMA = "explain.results/3"
# Schema 2 split schema 1's `checks` into the method's own figures (`checks`, with verdicts in
# `self_checks`) and the figures evaluate() adds (`metrics`), and added `cost.cached_rows`.
# Schema 3 moved large arrays (pixel maps, extras of more than INLINE_MAX values) out of the JSON
# into one .npz beside it, named by `arrays`; an array may still be inline ({"dtype", "shape", "data"}).
READABLE = ("explain.results/1", "explain.results/2", SCHEMA)
ArraysOpener = Callable[[Mapping[str, Any]], ArrayFile]  # the index's "arrays" entry -> its archive
# The keys evaluate() wrote into schema 1's `checks`; reading such a file moves them to `metrics`.
_V1_METRIC_KEYS = (
    "deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random",
    "comprehensiveness", "comprehensiveness_random", "sufficiency", "sufficiency_random",
    "sanity_rank_corr", "sanity_flag", "agreement_spearman", "rationale_precision", "pointing_game",
)
_ARRAY_KEYS = {"dtype", "shape", "data"}


def save(results: Results, path: str | os.PathLike[str]) -> Path:
    """Write `results` to `path` (JSON) and its large arrays to one .npz beside it, each atomically; return the path.

    The archive is written first under a name of its own (`<stem>.arrays-<hash>.npz`), then the
    index that names it; an older archive of the same stem is removed last, so an interruption at
    any point leaves a results file whose arrays are there.
    """
    path = Path(path)
    text, name, data = encode(results, path.stem)
    if name is not None and data is not None:
        target = path.parent / name
        if not (target.is_file() and target.stat().st_size == len(data)):  # the name is its content's hash
            write_atomic(target, data)
    write_atomic(path, text)
    for old in path.parent.iterdir():  # not glob: a stem may hold [ ] or *
        if old.name.startswith(f"{path.stem}.arrays-") and old.name.endswith(".npz") and old.name != name:
            old.unlink(missing_ok=True)
    return path


def encode(results: Results, stem: str) -> tuple[str, str | None, bytes | None]:
    """Return (the index's text, the archive's file name, the archive's bytes) for `results` saved as `<stem>.json`.

    Name and bytes are None when no array is large enough to leave the index.
    """
    writer = ArrayWriter()
    doc = _document(results, writer)
    if not len(writer):
        return _text(doc), None, None
    data = writer.finish()
    name = file_name(stem, data)
    doc["arrays"] = {"file": name, "format": "npz", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                     "count": len(writer)}
    return _text(doc), name, data


def dumps(results: Results) -> str:
    """Return the results as one self-contained JSON text, every array inline (same input, same text: keys are sorted)."""
    return _text(_document(results, None))


def _document(results: Results, writer: ArrayWriter | None) -> dict[str, Any]:
    if not isinstance(results, Results):
        raise TypeError("save() takes the Results returned by explain.explain()")
    return {
        "schema": SCHEMA,
        "model": _plain(dataclasses.asdict(results.model)),
        "run": _plain(results.run),
        "inputs": [_input_doc(r) for r in results.inputs],
        "explanations": [_explanation_doc(e, k, writer) for k, e in enumerate(results)],
        "failures": [dataclasses.asdict(f) for f in results.failures],
    }


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, allow_nan=False, separators=(",", ":")) + "\n"


def read_file(path: str | os.PathLike[str]) -> Results:
    """Read one results file written by `save` (or a folder holding results.json) into Results.

    Its arrays file is opened and checked now and read lazily: a pixel or attention map is read
    when it is used. `explain.open_results` also reads a sharded run's folder: see
    explain/results/results_files.py.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "results.json").is_file():
            raise InputError(f"{path} is a folder with neither results.json nor a sharded run's manifest.json")
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no results file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read results file {path}: {e}") from e

    def arrays(meta: Mapping[str, Any]) -> ArrayFile:
        file = path.parent / _arrays_name(meta)
        found = ArrayFile(functools.partial(local_file, str(file)), str(file), meta, keep_open=True)
        found.open()  # now: a missing or foreign arrays file is said when the results are opened
        return found

    try:
        return loads(text, arrays)
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not a valid explain results file: {e}") from e


def loads(text: str, arrays: ArraysOpener | None = None) -> Results:
    """Parse a results file's text into Results; `arrays` opens the archive its index names (see read_file)."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("explain.results/"):
        raise ValueError(f"missing or unknown 'schema' (expected {SCHEMA!r})")
    if doc["schema"] not in READABLE:
        raise ValueError(f"schema {doc['schema']!r} is not supported (this version reads {', '.join(READABLE)})")
    store: ArrayFile | None = None
    if doc.get("arrays"):
        if arrays is None:
            raise ValueError(f"its large arrays are in {_arrays_name(doc['arrays'])}, beside the file: open the file, not its text")
        store = arrays(doc["arrays"])
    model = ModelInfo(**{**doc["model"], "labels": tuple(doc["model"]["labels"])})
    inputs = [_input_from(d) for d in doc["inputs"]]
    explanations = [_explanation_from(d, doc["schema"], store) for d in doc["explanations"]]
    failures = [Failure(**f) for f in doc.get("failures", [])]
    return Results(explanations, model=model, inputs=inputs, failures=failures, run=doc.get("run", {}))


def _arrays_name(meta: Mapping[str, Any]) -> str:
    name = str(meta.get("file", "")) if isinstance(meta, Mapping) else ""
    if not name or name != Path(name).name:  # a bare file name beside the index, never a path elsewhere
        raise ValueError(f"'arrays' must name a file beside the results file, got {name!r}")
    return name


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write text (or bytes) to path through a temporary file in the same folder, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _input_doc(r: InputRecord) -> dict[str, Any]:
    d = dataclasses.asdict(r)
    return {k: v for k, v in d.items() if v is not None}


def _input_from(d: dict[str, Any]) -> InputRecord:
    d = dict(d)
    if d.get("prediction") is not None:
        d["prediction"] = Target(**d["prediction"])
    if d.get("probabilities") is not None:
        d["probabilities"] = tuple(float(p) for p in d["probabilities"])
    return InputRecord(**d)


def _explanation_doc(e: Explanation, k: int = 0, writer: ArrayWriter | None = None) -> dict[str, Any]:
    scores = np.asarray(e.scores, dtype=np.float32)
    # A pixel map goes to the arrays file; scores per feature (words, tokens) stay in the index.
    big = writer is not None and scores.ndim > 1
    return {
        "input": e.input,
        "method": e.method,
        "family": e.family,
        "target": {k: _plain(v) for k, v in dataclasses.asdict(e.target).items() if v is not None},
        "granularity": e.granularity,
        "features": list(e.features),
        "scores": writer.add(k, "scores", scores) if big and writer is not None else _plain(scores),  # NaN -> null, read back as NaN
        "settings": _plain(dict(e.settings)),
        "cost": {"seconds": round(float(e.seconds), 4), "rows": int(e.rows), "cached_rows": int(e.cached_rows)},
        "checks": _plain(dict(e.checks)),
        "self_checks": [_plain(dataclasses.asdict(c)) for c in e.self_checks],
        "metrics": _plain(dict(e.metrics)),
        "extras": {name: _encode_extra(v, k, name, writer) for name, v in e.extras.items()},
    }


def _explanation_from(d: dict[str, Any], schema: str = SCHEMA, store: ArrayFile | None = None) -> Explanation:
    checks, metrics = dict(d.get("checks", {})), dict(d.get("metrics", {}))
    if schema == "explain.results/1":
        metrics = {k: checks.pop(k) for k in _V1_METRIC_KEYS if k in checks}
    scores: Any = d["scores"]
    scores = _stored(scores, store) if isinstance(scores, dict) else np.asarray(scores, dtype=np.float32)
    extras = {k: _decode_extra(v, store) for k, v in d.get("extras", {}).items()}
    lazy = any(isinstance(v, Stored) for v in extras.values())
    cls = StoredExplanation if isinstance(scores, Stored) else Explanation
    return cls(
        method=d["method"],
        family=d["family"],
        input=int(d["input"]),
        target=_target_from(d["target"]),
        features=tuple(d["features"]),
        scores=scores,
        granularity=d["granularity"],
        settings=d.get("settings", {}),
        seconds=float(d["cost"]["seconds"]),
        rows=int(d["cost"]["rows"]),
        cached_rows=int(d["cost"].get("cached_rows", 0)),
        checks=checks,
        self_checks=tuple(_self_check_from(c) for c in d.get("self_checks", [])),
        metrics=metrics,
        extras=LazyExtras(extras) if lazy else extras,
    )


def _self_check_from(d: dict[str, Any]) -> SelfCheck:
    """A self-check as written; a value written as null (not finite, e.g. an undefined R^2) reads back as NaN."""
    return SelfCheck(**{**d, **{k: float("nan") for k in ("value", "threshold") if d.get(k) is None}})


def _target_from(d: dict[str, Any]) -> Target:
    prob = d.get("probability")
    return Target(**{**d, "probability": float("nan") if prob is None else prob})


def _encode_extra(v: Any, k: int = 0, name: str = "", writer: ArrayWriter | None = None) -> Any:
    if isinstance(v, np.ndarray):
        if writer is not None and v.size > INLINE_MAX and v.dtype.kind in "biuf":
            return writer.add(k, name, v, float16=name in FLOAT16)
        return {"dtype": str(v.dtype), "shape": list(v.shape), "data": _plain(v.ravel())}
    return _plain(v)


def _decode_extra(v: Any, store: ArrayFile | None = None) -> Any:
    if isinstance(v, dict) and set(v) == _ARRAY_KEYS:
        return np.asarray(v["data"], dtype=v["dtype"]).reshape(v["shape"])
    if isinstance(v, dict) and "array" in v and {"dtype", "shape"} <= set(v):
        return _stored(v, store)
    return v


def _stored(ref: dict[str, Any], store: ArrayFile | None) -> Stored:
    """Return the reference to one array of the arrays file (read when used)."""
    if store is None:
        raise ValueError(f"array {ref.get('array')!r} is in an arrays file, but the index names none")
    return Stored(store, str(ref["array"]), str(ref["dtype"]), tuple(int(n) for n in ref["shape"]))


def _plain(v: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to JSON values; non-finite floats become None."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    return v
