"""The results file: one flat, versioned JSON document that reports and other tools read."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .explanation import Explanation, Failure, InputRecord, ModelInfo, Results, SelfCheck, Target

SCHEMA = "explain.results/2"
# Schema 2 split schema 1's `checks` into the method's own figures (`checks`, with verdicts in
# `self_checks`) and the figures evaluate() adds (`metrics`), and added `cost.cached_rows`.
READABLE = ("explain.results/1", SCHEMA)
# The keys evaluate() wrote into schema 1's `checks`; reading such a file moves them to `metrics`.
_V1_METRIC_KEYS = (
    "deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random",
    "comprehensiveness", "comprehensiveness_random", "sufficiency", "sufficiency_random",
    "sanity_rank_corr", "sanity_flag", "agreement_spearman", "rationale_precision", "pointing_game",
)
_ARRAY_KEYS = {"dtype", "shape", "data"}


def save(results: Results, path: str | os.PathLike[str]) -> Path:
    """Write `results` to `path` as JSON atomically (temporary file, then rename); return the path."""
    path = Path(path)
    write_atomic(path, dumps(results))
    return path


def dumps(results: Results) -> str:
    """Return the results file's text for `results` (same input, same text: keys are sorted)."""
    if not isinstance(results, Results):
        raise TypeError("save() takes the Results returned by explain.explain()")
    doc = {
        "schema": SCHEMA,
        "model": _plain(dataclasses.asdict(results.model)),
        "run": _plain(results.run),
        "inputs": [_input_doc(r) for r in results.inputs],
        "explanations": [_explanation_doc(e) for e in results],
        "failures": [dataclasses.asdict(f) for f in results.failures],
    }
    return json.dumps(doc, sort_keys=True, allow_nan=False, separators=(",", ":")) + "\n"


def read_file(path: str | os.PathLike[str]) -> Results:
    """Read one results file written by `save` (or a folder holding results.json) into Results.

    `explain.open_results` also reads a sharded run's folder: see explain/results/results_files.py.
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
    try:
        return loads(text)
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not a valid explain results file: {e}") from e


def loads(text: str) -> Results:
    """Parse a results file's text into Results."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("explain.results/"):
        raise ValueError(f"missing or unknown 'schema' (expected {SCHEMA!r})")
    if doc["schema"] not in READABLE:
        raise ValueError(f"schema {doc['schema']!r} is not supported (this version reads {', '.join(READABLE)})")
    model = ModelInfo(**{**doc["model"], "labels": tuple(doc["model"]["labels"])})
    inputs = [_input_from(d) for d in doc["inputs"]]
    explanations = [_explanation_from(d, doc["schema"]) for d in doc["explanations"]]
    failures = [Failure(**f) for f in doc.get("failures", [])]
    return Results(explanations, model=model, inputs=inputs, failures=failures, run=doc.get("run", {}))


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file in the same folder, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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


def _explanation_doc(e: Explanation) -> dict[str, Any]:
    return {
        "input": e.input,
        "method": e.method,
        "family": e.family,
        "target": {k: _plain(v) for k, v in dataclasses.asdict(e.target).items() if v is not None},
        "granularity": e.granularity,
        "features": list(e.features),
        "scores": _plain(np.asarray(e.scores, dtype=np.float32)),  # NaN -> null, read back as NaN
        "settings": _plain(dict(e.settings)),
        "cost": {"seconds": round(float(e.seconds), 4), "rows": int(e.rows), "cached_rows": int(e.cached_rows)},
        "checks": _plain(dict(e.checks)),
        "self_checks": [_plain(dataclasses.asdict(c)) for c in e.self_checks],
        "metrics": _plain(dict(e.metrics)),
        "extras": {k: _encode_extra(v) for k, v in e.extras.items()},
    }


def _explanation_from(d: dict[str, Any], schema: str = SCHEMA) -> Explanation:
    checks, metrics = dict(d.get("checks", {})), dict(d.get("metrics", {}))
    if schema == "explain.results/1":
        metrics = {k: checks.pop(k) for k in _V1_METRIC_KEYS if k in checks}
    return Explanation(
        method=d["method"],
        family=d["family"],
        input=int(d["input"]),
        target=_target_from(d["target"]),
        features=tuple(d["features"]),
        scores=np.asarray(d["scores"], dtype=np.float32),
        granularity=d["granularity"],
        settings=d.get("settings", {}),
        seconds=float(d["cost"]["seconds"]),
        rows=int(d["cost"]["rows"]),
        cached_rows=int(d["cost"].get("cached_rows", 0)),
        checks=checks,
        self_checks=tuple(_self_check_from(c) for c in d.get("self_checks", [])),
        metrics=metrics,
        extras={k: _decode_extra(v) for k, v in d.get("extras", {}).items()},
    )


def _self_check_from(d: dict[str, Any]) -> SelfCheck:
    """A self-check as written; a value written as null (not finite, e.g. an undefined R^2) reads back as NaN."""
    return SelfCheck(**{**d, **{k: float("nan") for k in ("value", "threshold") if d.get(k) is None}})


def _target_from(d: dict[str, Any]) -> Target:
    prob = d.get("probability")
    return Target(**{**d, "probability": float("nan") if prob is None else prob})


def _encode_extra(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return {"dtype": str(v.dtype), "shape": list(v.shape), "data": _plain(v.ravel())}
    return _plain(v)


def _decode_extra(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == _ARRAY_KEYS:
        return np.asarray(v["data"], dtype=v["dtype"]).reshape(v["shape"])
    return v


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
