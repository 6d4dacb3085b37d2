"""The Ray actor: loads the model once, explains batches with explain.explain, writes shards.

A worker never raises to Ray: a model that cannot load, or a job-wide error such as an unknown
target, comes back as an answer row {"error": ...}; the driver stops the run and prints that
one line (an exception would make Ray restart the actor and print each remote traceback).
Only a crash (the process dies) is left to Ray, which restarts the actor and retries the batch.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import ExplainError
from ..results.explanation import Results
from ..invalid import InvalidInput
from ..results.shards import INFLIGHT, Store, write_shard
from .sources import decode_item


POISON = 2  # deaths on one input after which it is recorded as failed (Ray retries a batch 3 times)


class Worker:
    """One actor of the pool: loads the model once, explains batches, writes each as a shard."""

    config: dict[str, Any] = {}  # set on a subclass by _map

    def __init__(self) -> None:
        # Errors are answers, not exceptions: an exception here would make Ray restart the actor
        # and print every traceback; the driver raises the error once, as one line.
        self.error: str | None = None
        try:
            self._setup(**self.config)
        except Exception as e:
            self.error = _describe(e)

    def _setup(
        self,
        checkpoint: str,
        load: dict[str, Any],
        job: dict[str, Any],
        out: str,
        attempt: int,
        threads: int,
        expect_hash: str | None,
        cwd: str,
        crash: str | None,
    ) -> None:
        import torch

        from ..loading.checkpoint import load as load_model

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if os.path.isdir(cwd):  # relative input paths mean what they meant to the driver
            os.chdir(cwd)
        torch.set_num_threads(threads)
        self.model = load_model(checkpoint, **load)
        if expect_hash and self.model.info.content_hash != expect_hash:
            raise ExplainError("cannot resume: the saved results were made with another checkpoint (content hash differs)")
        self.job = dict(job)
        self.settings = self.job.pop("settings", None) or {}
        self.store = Store(out)
        self.attempt = attempt
        self.crash = crash

    def __call__(self, batch: Any) -> dict[str, list[str]]:
        """Explain one batch (a pyarrow table of index, item) and write it as a shard; return its summary."""
        if self.error is None:
            try:
                return self._explain(batch)
            except Exception as e:  # a job-wide error (e.g. an unknown target): stop the run
                self.error = _describe(e)
        return {"summary": [json.dumps({"error": self.error})]}

    def _explain(self, batch: Any) -> dict[str, list[str]]:
        from ..running.engine import run

        indices = [int(i) for i in batch.column("index").to_pylist()]
        items = [decode_item(s) for s in batch.column("item").to_pylist()]
        merged: Results | None = None
        for first, item in zip(indices, items):
            # A marker while the input is explained: if the process dies on it, the retried
            # batch finds it; an input that killed POISON workers is a failure, not a lost run.
            marker = f"{INFLIGHT}/input-{first}"
            deaths = int(self.store.read_text(marker)) if self.store.exists(marker) else 0
            if deaths >= POISON:
                item = InvalidInput(f"input {first}: the worker process died {deaths} times while explaining it (out of memory, or a crash in native code); skipped")
            else:
                self.store.write_bytes(marker, str(deaths + 1).encode(), sync=False)
                self._maybe_crash(first)
            part = run(self.model, [item], first_index=first, warn=False, **self.job, **self.settings)
            self.store.delete(marker)
            if merged is None:
                merged = part
            else:
                merged.extend(part)
                merged.inputs.extend(part.inputs)
                merged.failures.extend(part.failures)
                merged.run["seconds"] = round(merged.run["seconds"] + part.run["seconds"], 3)
                merged.run["rows"] += part.run["rows"]
        assert merged is not None
        name = write_shard(self.store, merged, self.attempt)
        return {"summary": [json.dumps(_summary(merged, name, self.attempt))]}

    def _maybe_crash(self, index: int) -> None:
        """Tests only: "AT:MARKER" kills this process at input AT once, "AT:always" every time."""
        for spec in (self.crash or "").split(","):
            at, _, marker = spec.partition(":")
            if at and int(at) == index and (marker == "always" or not os.path.exists(marker)):
                if marker != "always":
                    with open(marker, "w") as f:
                        f.write(f"worker {os.getpid()} crashed on input {at}\n")
                os._exit(1)


def _describe(e: BaseException) -> str:
    """Return the one-line message the driver shows: an ExplainError's text, else "internal: ..."."""
    if isinstance(e, ExplainError):
        return str(e)
    return f"{_INTERNAL}{type(e).__name__}: {e}"


_INTERNAL = "internal error in a worker: "


class WorkerError(RuntimeError):
    """A worker met an error that is not the user's (a bug): the run stops."""


def _summary(results: Results, name: str, attempt: int) -> dict[str, Any]:
    import dataclasses

    from ..results.results_io import _plain

    methods: dict[str, list[float]] = {}
    for e in results:
        acc = methods.setdefault(e.method, [0, 0.0, 0])
        acc[1] += e.seconds
        acc[2] += e.rows
    for name_ in methods:
        methods[name_][0] = len({e.input for e in results.by_method(name_)})
    indices = [r.index for r in results.inputs]
    failures = []
    for f in results.failures:
        where = "" if f.error.startswith(f"input {f.input}") else f"input {f.input}: "
        failures.append(f"{f.method + ' on ' if f.method else ''}{where}{f.error}")
    return {
        "file": name,
        "first": min(indices),
        "last": max(indices),
        "inputs": len(indices),
        "explanations": len(results),
        "rows": int(results.run.get("rows", 0)),
        "seconds": float(results.run.get("seconds", 0.0)),
        "attempt": attempt,
        "failures": failures,
        "notes": [f"input {r.index}: {r.note}" for r in results.inputs if r.note and r.note != "failed"],
        "methods": methods,
        "model": _plain(dataclasses.asdict(results.model)),
        "run": _plain(results.run),
    }
