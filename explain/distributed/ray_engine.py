"""The Ray engine: Ray Data reads the inputs, an actor pool explains them, shards stream to OUT.

    driver:  plan Parts ─▶ ray.data.read_datasource(InputDatasource) ─▶ map_batches(Worker, actors)
    worker:  load the model once ─▶ explain.explain(shard, first_index=...) ─▶ OUT/shards/part-*.json
    driver:  receives one small summary row per shard ─▶ OUT/manifest.json (counts, shard list)

The worker runs the same `explain.explain` as the in-process path, so the answers are the same.
Faults: Ray restarts a crashed worker and retries its batch (`max_restarts`, `max_task_retries`);
a bad input is a Failure inside its shard, as in-process; shards are written atomically, so
Ctrl-C leaves every finished shard valid, and `resume` explains only what no shard holds.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..errors import ExplainError
from ..results.results_io import SCHEMA
from ..results.shards import INFLIGHT, LAYOUT, MANIFEST, SHARDS, Store, _load, read_manifest, shard_files, write_manifest
from .sources import Part
from .worker import _INTERNAL, Worker, WorkerError

CRASH_HOOK = "EXPLAIN_RAY_TEST_CRASH_AT"  # tests only: "INDEX:MARKER" kills the worker at INDEX once
MANIFEST_SECONDS = 2.0  # the manifest is rewritten at most this often while a run goes on


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run goes."""

    address: str | None = None  # None: start a local cluster; "auto" or "HOST:PORT" joins one
    workers: int | None = None  # actors in the pool; None: one per GPU, else one per CPU
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_worker: float = 1.0
    shard_size: int = 64  # inputs per batch and per shard file
    threads: int | None = None  # torch threads per worker; None: cpus_per_worker
    max_retries: int = 3  # restarts of a crashed worker, and retries of its batch
    verbose: bool = False  # show Ray's own logs and progress bars


@dataclass
class RunSummary:
    """What the driver keeps of a Ray run: counts and a few lines, never the explanations."""

    out: str
    inputs: int = 0  # inputs in the job
    explained: int = 0  # inputs written by this attempt
    skipped: int = 0  # inputs already in shards (resume)
    shards: int = 0
    failures: int = 0
    failure_lines: list[str] | None = None  # the first few failures, for the summary
    notes: list[str] | None = None  # the first few input notes (truncation warnings)
    methods: dict[str, list[float]] | None = None  # method -> [inputs, seconds, rows]
    seconds: float = 0.0
    workers: int = 0


def run(
    checkpoint: str,
    parts: Sequence[Part],
    out: str,
    *,
    job: Mapping[str, Any],
    load: Mapping[str, Any] | None = None,
    options: RayOptions = RayOptions(),
    resume: bool = False,
    on_shard: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Explain every input of `parts` on Ray and write a sharded results folder at `out`.

    `job` holds explain.explain's keyword arguments (methods, target, granularity, seed,
    max_length, truncate, max_new_tokens, continuation, settings as {method: {...}});
    `load` holds explain.load's. An existing folder must be resumed (`resume=True`) or
    removed by the caller first. `on_shard` receives each finished shard's summary.
    """
    if options.shard_size < 1:
        raise ExplainError(f"shard size {options.shard_size}: give a positive number of inputs per shard")
    store = Store(out)
    total = sum(p.count for p in parts)
    job_doc = _job_doc(checkpoint, job, total)
    attempt, skip, expect_hash, previous = 0, set(), None, None
    if store.exists(MANIFEST):
        if not resume:
            raise ExplainError(f"{store.show(MANIFEST)} already exists; pass --resume to continue it or --force to overwrite it")
        previous = read_manifest(store)
        _check_same_job(previous, job_doc)
        attempt = int(previous.get("attempt", 0)) + 1
        skip = finished_inputs(store)
        expect_hash = (previous.get("model") or {}).get("content_hash")
    summary = RunSummary(out=store.uri, inputs=total, skipped=len(skip), failure_lines=[], notes=[], methods={})
    manifest = _new_manifest(previous, job_doc, options, attempt)
    write_manifest(store, manifest)
    for name in store.list(INFLIGHT):  # deaths are counted within one attempt (an interrupt is not one)
        store.delete(f"{INFLIGHT}/{name}")
    todo = [p for p in parts if any(i not in skip for i in range(p.first, p.first + p.count))]
    if not todo:
        manifest["status"] = "complete"
        write_manifest(store, manifest)
        return summary
    started = time.perf_counter() - float((manifest["run"] or {}).get("seconds", 0.0))  # resumed: time adds up
    stop = _start_ray(options)
    last_write = time.monotonic()
    try:
        workers = summary.workers = manifest["engine"]["workers"] = _workers(options)
        for row in _execute(checkpoint, todo, skip, store, job, load or {}, options, attempt, expect_hash, workers):
            if "error" in row:  # a worker could not load the model or run the job: stop here
                if row["error"].startswith(_INTERNAL):
                    raise WorkerError(row["error"])
                raise ExplainError(row["error"])
            _record(summary, manifest, row)
            if on_shard:
                on_shard(row)
            if time.monotonic() - last_write >= MANIFEST_SECONDS:
                write_manifest(store, _finish(manifest, started, "running"))
                last_write = time.monotonic()
    except KeyboardInterrupt:
        write_manifest(store, _finish(manifest, started, "interrupted"))
        raise
    except Exception as e:
        if attempt == 0 and not manifest["shards"]:
            store.delete(MANIFEST)  # nothing was written: the same command can simply be rerun
        else:
            write_manifest(store, _finish(manifest, started, "failed"))
        if isinstance(e, (ExplainError, WorkerError)):
            raise
        cause = _explain_error(e)
        if cause is not None:
            raise ExplainError(str(cause)) from e
        # Ray's errors carry whole remote tracebacks in their text: keep the first line (the
        # CLI's --verbose shows Ray's logs and the traceback).
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise WorkerError(f"the Ray run failed: {type(e).__name__}: {first}") from e
    finally:
        if stop:
            import ray

            ray.shutdown()
    summary.seconds = round(time.perf_counter() - started, 3)  # includes earlier attempts
    write_manifest(store, _finish(manifest, started, "complete"))
    return summary


def finished_inputs(store: Store) -> set[int]:
    """Return the inputs that the shards under `store` hold without a failure (newest attempt wins)."""
    newest: dict[int, tuple[int, bool]] = {}
    for _, _, attempt, rel in shard_files(store):
        part = _load(store, rel)
        failed = {f.input for f in part.failures}
        for r in part.inputs:
            if r.index not in newest or newest[r.index][0] <= attempt:
                newest[r.index] = (attempt, r.index not in failed)
    return {i for i, (_, ok) in newest.items() if ok}


def _job_doc(checkpoint: str, job: Mapping[str, Any], total: int) -> dict[str, Any]:
    """Return what makes two runs the same job (compared on resume)."""
    keys = ("methods", "target", "top_classes", "baseline", "granularity", "seed", "max_length", "truncate", "max_new_tokens", "continuation", "settings")
    doc = {k: job.get(k) for k in keys}
    doc["checkpoint"] = os.path.abspath(checkpoint)
    doc["inputs"] = total
    return json.loads(json.dumps(doc, default=str))


def _check_same_job(previous: dict[str, Any], job_doc: dict[str, Any]) -> None:
    saved = previous.get("job") or {}
    for key, value in job_doc.items():
        if saved.get(key) != value:
            what = "number of inputs" if key == "inputs" else key
            raise ExplainError(f"cannot resume: the saved run used other {what} ({saved.get(key)!r}, now {value!r}); rerun with --force instead")


def _new_manifest(previous: dict[str, Any] | None, job_doc: dict[str, Any], options: RayOptions, attempt: int) -> dict[str, Any]:
    return {
        "layout": LAYOUT,
        "schema": SCHEMA,
        "status": "running",
        "attempt": attempt,
        "created": (previous or {}).get("created") or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "job": job_doc,
        "engine": {"name": "ray", "address": options.address, "workers": options.workers, "gpus_per_worker": options.gpus_per_worker,
                   "shard_size": options.shard_size},
        "inputs": job_doc["inputs"],
        "model": (previous or {}).get("model"),
        "run": (previous or {}).get("run"),
        "shards": list((previous or {}).get("shards") or []),
    }


def _record(summary: RunSummary, manifest: dict[str, Any], row: dict[str, Any]) -> None:
    """Add one finished shard's summary row to the run's counts and the manifest."""
    summary.shards += 1
    summary.explained += row["inputs"]
    summary.failures += len(row["failures"])
    assert summary.failure_lines is not None and summary.notes is not None and summary.methods is not None
    summary.failure_lines.extend(row["failures"][: max(0, 20 - len(summary.failure_lines))])
    summary.notes.extend(row["notes"][: max(0, 20 - len(summary.notes))])
    for name, (n, secs, nrows) in row["methods"].items():
        acc = summary.methods.setdefault(name, [0, 0.0, 0])
        acc[0] += n
        acc[1] += secs
        acc[2] += nrows
    if manifest["model"] is None:
        manifest["model"] = row["model"]
    if manifest["run"] is None:
        manifest["run"] = dict(row["run"], seconds=0.0, rows=0)
    manifest["run"]["rows"] = int(manifest["run"].get("rows", 0)) + row["rows"]
    manifest["shards"].append({k: row[k] for k in ("file", "first", "last", "inputs", "explanations", "rows", "seconds", "attempt")}
                              | {"failures": len(row["failures"])})


def _finish(manifest: dict[str, Any], started: float, status: str) -> dict[str, Any]:
    manifest["status"] = status
    if manifest["run"] is not None:
        manifest["run"]["seconds"] = round(time.perf_counter() - started, 3)
    return manifest


def _start_ray(options: RayOptions) -> bool:
    """Join the cluster at options.address, or start a local one; return True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": options.verbose,
        "logging_level": logging.INFO if options.verbose else logging.ERROR,
        "configure_logging": True,
    }
    if options.address:
        kwargs["address"] = options.address
    else:
        # Logical CPUs: every worker gets its own, and the read tasks one more, so reading never
        # waits behind a full actor pool (they are cheap next to explaining).
        wanted = options.workers or (os.cpu_count() or 1)
        kwargs["num_cpus"] = int(max(os.cpu_count() or 1, wanted * options.cpus_per_worker) + 1)
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise ExplainError(f"cannot join the Ray cluster at {options.address!r}: {e}") from e
    return True


def _workers(options: RayOptions) -> int:
    import ray

    if options.workers is not None:
        if options.workers < 1:
            raise ExplainError(f"--workers {options.workers}: give at least one worker")
        return options.workers
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    per = _gpus_per_worker(options)
    if gpus and per:
        return max(1, int(gpus // per))
    return max(1, int((float(resources.get("CPU", 1)) - 1) // options.cpus_per_worker))


def _gpus_per_worker(options: RayOptions) -> float:
    import ray

    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    return 1.0 if float(ray.cluster_resources().get("GPU", 0)) > 0 else 0.0


@contextlib.contextmanager
def _ray_data_settings(verbose: bool) -> Iterator[logging.Logger]:
    """Set Ray's process-wide DataContext for a run and yield the "ray.data" logger; put both back
    when the run ends or fails (the caller's own Ray Data work keeps its settings)."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ours = {"enable_progress_bars": verbose, "print_on_execution_start": verbose,
            "max_consecutive_actor_init_deaths": 1}  # a model that cannot load fails the run, once
    saved = {k: getattr(ctx, k) for k in ours}
    log = logging.getLogger("ray.data")
    level = log.level
    try:
        for k, v in ours.items():
            setattr(ctx, k, v)
        yield log
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        log.setLevel(level)


def _execute(
    checkpoint: str,
    parts: Sequence[Part],
    skip: set[int],
    store: Store,
    job: Mapping[str, Any],
    load: Mapping[str, Any],
    options: RayOptions,
    attempt: int,
    expect_hash: str | None,
    workers: int,
) -> Iterator[dict[str, Any]]:
    """Build the Ray Data pipeline and yield one summary per finished shard as it finishes."""
    import ray

    from .datasource import InputDatasource

    with _ray_data_settings(options.verbose) as log:
        crash = os.environ.get(CRASH_HOOK)
        gpus = _gpus_per_worker(options)
        ds = ray.data.read_datasource(InputDatasource(parts, skip, options.shard_size, os.getcwd()), num_cpus=0.5)
        with warnings.catch_warnings():
            # max_restarts / max_task_retries are passed as Ray remote args, which Ray 2.60 marks as
            # deprecated (removal planned for 2.64, hence the pin in pyproject.toml); Ray Data's own
            # default is to retry forever, which would loop on an input that always kills a worker.
            warnings.simplefilter("ignore")
            ds = _map(ds, workers, gpus, options, {
                "checkpoint": os.path.abspath(checkpoint),
                "load": dict(load),
                "job": dict(job),
                "out": store.uri,
                "attempt": attempt,
                "threads": options.threads or max(1, int(options.cpus_per_worker)),
                "expect_hash": expect_hash,
                "cwd": os.getcwd(),
                "crash": crash,
            })
        # Quiet unless verbose: Ray Data logs a failing run's remote tracebacks at ERROR level, and
        # the driver reports the error itself, in one line.
        log.setLevel(logging.INFO if options.verbose else logging.CRITICAL)
        # Whole output blocks, no prefetch: each shard's summary reaches the driver as it finishes
        # (iter_rows would gather rows into batches of 256 first).
        for batch in ds.iter_batches(batch_size=None, prefetch_batches=0, batch_format="pyarrow"):
            for text in batch.column("summary").to_pylist():
                yield json.loads(text)


def _map(ds: Any, workers: int, gpus: float, options: RayOptions, worker_args: dict[str, Any]) -> Any:
    """Return `ds` mapped through a fixed pool of `workers` Worker actors."""
    from ray.data import ActorPoolStrategy

    # The worker's settings ride on a subclass (pickled by value) rather than as constructor
    # arguments, which Ray would keep in the object store and warn about on every restart.
    configured = type("Worker", (Worker,), {"config": worker_args})
    return ds.map_batches(
        configured,
        # Ray Data re-blocks what the read tasks yield (joins small blocks, splits big ones to feed
        # every worker), so a shard is a batch of shard_size rows, not a block: its file is named
        # by the inputs it holds.
        batch_size=options.shard_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=workers),
        num_cpus=options.cpus_per_worker,
        num_gpus=gpus or None,
        # A crashed worker is restarted (-1: as often as needed; Ray logs an error line for any
        # positive limit) and its batch retried up to max_retries times, after which the run
        # fails naming the error: an input that kills every worker cannot loop forever.
        max_restarts=-1,
        max_task_retries=options.max_retries,
    )


def _explain_error(e: BaseException) -> BaseException | None:
    """Return the ExplainError behind a Ray error (Ray wraps a worker's exception), or None."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [e]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, ExplainError):
            return cur
        stack.extend([cur.__cause__, cur.__context__, getattr(cur, "cause", None)])
    return None


__all__ = ["CRASH_HOOK", "SHARDS", "RayOptions", "RunSummary", "Worker", "WorkerError", "finished_inputs", "run"]
