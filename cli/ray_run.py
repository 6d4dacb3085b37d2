"""`explain run --engine ray`: plan the inputs, run them on Ray, print what the shards hold."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

from explain import methods as registry
from explain.distributed import RayOptions, RunSummary, open_sharded, plan, run_ray
from explain.results.shards import MANIFEST, Store, clear
from explain.errors import ExplainError, InputError
from explain.results.explanation import Results
from explain.loading.checkpoint import checkpoint_family

from .options import input_groups, load_options, no_inputs_message, parse_settings, report_inputs


def run_on_ray(args: argparse.Namespace) -> int:
    """Explain the inputs on a Ray cluster into a sharded results folder; return the exit code."""
    if args.resume and args.force:
        raise ExplainError("--resume and --force exclude each other: resume keeps the saved inputs, force discards them")
    if args.metrics:
        raise ExplainError("--metrics is not available with --engine ray yet; run 'explain evaluate' on a sample of the inputs")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ExplainError('--engine ray needs Ray: pip install "explain[distributed]"') from None
    family = checkpoint_family(args.checkpoint)  # reads config.json only: the workers load the weights
    settings = parse_settings(args)
    methods = registry.resolve_for_family(args.methods or "ig", family)  # the workers check the model's own refusals
    for m in methods:
        m.settings(settings.get(m.name))  # unknown or malformed settings fail here, before Ray starts
    target: Any = None
    if args.target:
        target = args.target if len(args.target) > 1 else args.target[0]
    if args.target_word:  # token classifiers; the workers' adapters check the model kind
        from explain.adapters.token_classifier import word_targets

        target = word_targets(None, args.target_word, target)
    parts = plan(input_groups(args, family))
    total = sum(p.count for p in parts)
    if total == 0:
        raise InputError(no_inputs_message(family))
    store = Store(args.out)
    if store.exists(MANIFEST) and not args.resume:
        if not args.force:
            raise ExplainError(f"{store.show(MANIFEST)} already exists; pass --resume to continue it, --force to overwrite it, or choose another --out")
        clear(store)
    elif not store.exists(MANIFEST) and store.exists("results.json") and not args.force:
        raise ExplainError(f"{store.show('results.json')} already exists; pass --force to write a sharded run beside it, or choose another --out")
    job = {
        "methods": [m.name for m in methods],
        "target": target,
        "top_classes": args.top_classes,
        "baseline": args.baseline,
        "granularity": args.granularity,
        "seed": args.seed,
        "max_length": args.max_length,
        "truncate": args.long_inputs == "truncate",
        "max_new_tokens": args.max_new_tokens,
        "continuation": args.continuation,
        "settings": settings,
    }
    options = RayOptions(
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        shard_size=args.shard_size,
        threads=args.threads,
        verbose=args.verbose,
    )
    if not args.verbose:  # Ray's C++ log lines (e.g. a warning on every actor pool) are not ours to show
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    printer = ShardPrinter(total, quiet=args.quiet)
    try:
        summary = run_ray(args.checkpoint, parts, args.out, job=job, load=load_options(args), options=options,
                          resume=args.resume, on_shard=printer)
    except KeyboardInterrupt:
        print(f"explain: interrupted; {printer.shards} shard(s) finished in this attempt are kept in {store.show('shards')}; "
              "rerun with --resume to continue", file=sys.stderr)
        return 130
    report_path = None
    if not args.no_report:
        report_path = write_report(open_sharded(args.out), store.show("report.html"), report_inputs(args), args.assets)
    if not args.quiet:
        print_summary(summary, store, report_path)
    for note in summary.notes or []:
        print(f"explain: warning: {note}", file=sys.stderr)
    return 1 if summary.failures else 0


class ShardPrinter:
    """Prints one line per finished shard (inputs done, rate) on stderr unless quiet."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total = total
        self.quiet = quiet
        self.done = 0
        self.shards = 0
        self.t0 = time.perf_counter()

    def __call__(self, row: dict[str, Any]) -> None:
        """Receive one finished shard's summary."""
        self.done += int(row["inputs"])
        self.shards += 1
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        failed = f", {len(row['failures'])} failed" if row["failures"] else ""
        print(f"[{self.done}/{self.total}] {row['file']}: {row['inputs']} inputs{failed} ({rate:.1f} inputs/s overall)", file=sys.stderr, flush=True)


def write_report(results: Results, target: str, max_inputs: int | None = 100, assets: str = "inline") -> str:
    """Render the report to `target` (a local path, or a URI it is uploaded to); return where it is."""
    import explain

    if "://" not in target:
        return str(explain.report(results, target, max_inputs=max_inputs, assets=assets))
    folder, _, name = target.rstrip("/").rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        explain.report(results, os.path.join(tmp, name), max_inputs=max_inputs, assets=assets)
        for written in sorted(os.listdir(tmp)):  # the report, and with assets="shared" its plotly.js
            with open(os.path.join(tmp, written), "rb") as f:
                Store(folder).write_bytes(written, f.read())
    return target


def print_summary(summary: RunSummary, store: Store, report_path: str | None) -> None:
    """Print per-method inputs, seconds and rows of this attempt, failures, and where the files are."""
    print(f"{'method':<12}{'inputs':>8}{'seconds':>10}{'rows':>10}")
    for name, (n, secs, nrows) in (summary.methods or {}).items():
        print(f"{name:<12}{int(n):>8}{secs:>10.2f}{int(nrows):>10}")
    if summary.skipped:
        print(f"{summary.skipped} input(s) were already in shards (resumed)")
    if summary.failures:
        print(f"{summary.failures} failure(s):")
        for line in summary.failure_lines or []:
            print(f"  {line}")
        if summary.failures > len(summary.failure_lines or []):
            print(f"  ... and {summary.failures - len(summary.failure_lines or [])} more (see the shards)")
    print(f"{summary.explained} input(s) in {summary.shards} shard(s) on {summary.workers} worker(s), {summary.seconds:.1f}s")
    print(f"results: {store.show(MANIFEST)} (shards in {store.show('shards')})")
    if report_path:
        print(f"report:  {report_path}")
