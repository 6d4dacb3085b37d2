"""One function per sub-command: call the Python API, print, write files, return the exit code."""

from __future__ import annotations

import argparse
import sys
import time
import webbrowser
from pathlib import Path
from typing import Any, Callable, cast

import explain
from explain import methods as registry
from explain.adapters.base import Adapter
from explain.errors import ExplainError
from explain.results.explanation import Results
from explain.running.input_batching import check_batch_inputs
from explain.methods.base import Method
from explain.results.results_io import save

from .options import (
    _names,
    failure_lines,
    gather_inputs,
    load_model,
    load_options,
    parse_settings,
    print_summary,
    read_rationales,
    report_inputs,
    self_check_summary,
    set_threads,
)
from .progress import Progress

# Parts of an input's note that inform and warn of nothing (a token classifier's predicted
# labels): the report shows them; the command line does not print them as warnings.
INFO_NOTES = ("predicted: ", "the model sees the ")  # said in the report, not a warning: the checkpoint's own crop
FLUSH_SECONDS = 2.0  # results.json is rewritten at most this often while a run goes on


def run(args: argparse.Namespace) -> int:
    """Explain a checkpoint on inputs; write results.json and report.html."""
    check_batch_inputs(args.batch_inputs)  # before the model loads: a typo costs no waiting
    if args.engine == "ray":  # a Ray worker explains one input per engine call: nothing to share
        from .ray_run import run_on_ray

        return run_on_ray(args)
    out = Path(args.out)
    results_path = out / "results.json"
    if args.resume and args.force:
        raise ExplainError("--resume and --force exclude each other: resume keeps the saved inputs, force discards them")
    previous = None
    if results_path.exists():
        if args.resume:
            previous = explain.open_results(results_path)
        elif not args.force:
            raise ExplainError(f"{results_path} already exists; pass --resume to continue it, --force to overwrite it, or choose another --out")
    settings = parse_settings(args)
    set_threads(args.threads)
    loading = time.perf_counter()
    model = load_model(args.checkpoint, **load_options(args))
    load_seconds = round(time.perf_counter() - loading, 3)
    inputs = gather_inputs(args, model.family)
    methods = registry.resolve(args.methods or "ig", model)
    target: Any = None
    if args.target:
        target = args.target if len(args.target) > 1 else args.target[0]
    if args.target_word:
        from explain.adapters.token_classifier import word_targets

        target = word_targets(model, args.target_word, target)
    progress = Progress(len(inputs) * len(methods), quiet=args.quiet)
    last_flush = [time.monotonic()]
    latest: list[Results] = []

    def flush(partial: Results) -> None:
        # A snapshot between inputs: an interrupt mid-input must not save that input half done.
        latest[:] = [Results(list(partial), model=partial.model, inputs=partial.inputs, failures=partial.failures, run=partial.run)]
        if time.monotonic() - last_flush[0] >= FLUSH_SECONDS:
            save(partial, results_path)
            last_flush[0] = time.monotonic()

    try:
        results = _explain(model, inputs, methods, target, args, settings, progress, flush, previous)
    except KeyboardInterrupt:
        progress.close()
        if latest:  # keep every finished input; --resume continues from here
            save(latest[0], results_path)
            done = len({r.index for r in latest[0].inputs})
            print(f"explain: interrupted; {done} finished input(s) saved in {results_path}; rerun with --resume to continue", file=sys.stderr)
        else:
            print("explain: interrupted before any input finished", file=sys.stderr)
        return 130
    progress.close()
    results.run["load_seconds"] = load_seconds  # model loading, apart from the compute in "seconds"
    if args.metrics:
        from explain.metrics import evaluate as evaluate_metrics

        results = evaluate_metrics(model, results, metrics=_names(args.metrics), seed=args.seed, rationales=read_rationales(args.rationale))
    save(results, results_path)
    report_path = None
    if not args.no_report:
        report_path = Path(explain.report(results, str(out / "report.html"), max_inputs=report_inputs(args), assets=args.assets))
    if not args.quiet:
        print_summary(results, results_path, report_path)
    else:  # warnings only: the failed inputs, one line each (the exit code is 1)
        for line in failure_lines(results):
            print(f"explain: warning: failed: {line}", file=sys.stderr)
    for r in results.inputs:
        said = [part for part in (r.note or "").split("; ") if part and part != "failed" and not part.startswith(INFO_NOTES)]
        if said:  # what changed the input (truncated, a frame, transparency) or left nothing to explain
            print(f"explain: warning: input {r.index}: {'; '.join(said)}", file=sys.stderr)
    flagged = self_check_summary(results)
    if flagged and not args.quiet:
        print(f"explain: warning: {flagged}", file=sys.stderr)
    if args.open and report_path:
        webbrowser.open(report_path.resolve().as_uri())
    return 1 if results.failures else 0


def _explain(
    model: Adapter,
    inputs: list[Any],
    methods: list[Method],
    target: Any,
    args: argparse.Namespace,
    settings: dict[str, dict[str, Any]],
    progress: Progress,
    flush: Callable[[Results], None],
    previous: Results | None,
) -> Results:
    """Call the engine with the run's options, recording failures (the summary prints them)."""
    from explain.running.engine import run as run_engine

    return run_engine(
        model,
        inputs,
        methods=[m.name for m in methods],
        target=target,
        top_classes=args.top_classes,
        baseline=args.baseline,
        granularity=args.granularity,
        seed=args.seed,
        max_length=args.max_length,
        truncate=args.long_inputs == "truncate",
        max_new_tokens=args.max_new_tokens,
        continuation=args.continuation,
        errors="record",
        progress=progress,
        on_input=flush,
        resume=previous,
        warn=False,
        batch_inputs=args.batch_inputs,
        **cast(dict[str, Any], settings),  # {method: {option: value}}; typed loosely for **
    )


def evaluate(args: argparse.Namespace) -> int:
    """Compute trust metrics for a saved run; write them beside it, never over it."""
    from explain.metrics import evaluate as evaluate_metrics

    saved = explain.open_results(args.results)
    out = Path(args.out) if args.out else Path(args.results).parent / "evaluated"
    if (out / "results.json").exists() and not args.force:
        raise ExplainError(f"{out / 'results.json'} already exists; pass --force to overwrite it or choose another --out")
    if (out / "results.json").resolve() == Path(args.results).resolve():
        raise ExplainError("--out would overwrite the saved run; choose another folder")
    model = load_model(args.checkpoint, device=args.device)
    scored = evaluate_metrics(model, saved, metrics=_names(args.metrics), seed=args.seed, rationales=read_rationales(args.rationale))
    save(scored, out / "results.json")
    report_path = explain.report(scored, str(out / "report.html"))
    if not args.quiet:
        from explain.metrics.summary import table

        print(table(scored.run["metrics"]))
        print(f"results: {out / 'results.json'}")
        print(f"report:  {report_path}")
    return 0


def methods(args: argparse.Namespace) -> int:
    """Print which method serves which family, with each method's settings."""
    families = ("text-classifier", "causal-lm", "image-classifier")
    print(f"{'method':<12}" + "".join(f"{f:>18}" for f in families) + "  title")
    for name, m in registry.REGISTRY.items():
        marks = "".join(f"{('yes' if f in m.families else '-'):>18}" for f in families)
        print(f"{name:<12}{marks}  {m.title}")
    print("\nsettings (--set METHOD.OPTION=VALUE; None = chosen for the model family):")
    for name, m in registry.REGISTRY.items():
        for opt, default, help_text in m.describe_settings():
            print(f"  {name + '.' + opt:<24} {default:<16} {help_text}")
    return 0


def inspect(args: argparse.Namespace) -> int:
    """Print what was detected in a checkpoint."""
    model = load_model(args.checkpoint, device=args.device, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
    info = model.info
    labels = ", ".join(info.labels[:20]) + (" ..." if len(info.labels) > 20 else "")
    for key, value in (
        ("family", info.family),
        ("architecture", info.architecture),
        ("path", info.path),
        ("content hash", info.content_hash),
        ("parameters", f"{info.parameters:,}"),
        ("labels", f"{len(info.labels)}: {labels}" if info.labels else "-"),
        ("layers", info.layers if info.layers is not None else "-"),
        ("heads", info.heads if info.heads is not None else "-"),
        ("max length", info.max_length if info.max_length is not None else "-"),
        *((("image input", prep.describe()),) if (prep := getattr(model, "prep", None)) is not None else ()),
        ("device", info.device),
        ("methods", ", ".join(registry.for_model(model))),
        *((("refused", "; ".join(f"{n}: {why}" for n, why in model.refused.items())),) if model.refused else ()),
    ):
        print(f"{key:<14}{value}")
    return 0


def report(args: argparse.Namespace) -> int:
    """Re-render a report from a saved results file."""
    results = explain.open_results(args.results)
    folder = Path(args.results).is_dir() or "://" in args.results  # a sharded results folder
    if folder:
        from .ray_run import write_report

        path = write_report(results, args.out or args.results.rstrip("/") + "/report.html", report_inputs(args), args.assets)
        if not args.quiet:
            print(f"report: {path}")
        if args.open and "://" not in str(path):
            webbrowser.open(Path(path).resolve().as_uri())
        return 0
    out = Path(args.out) if args.out else Path(args.results).with_name("report.html")
    if out.resolve() == Path(args.results).resolve():
        raise ExplainError("--out would overwrite the results file; choose another path")
    path = explain.report(results, str(out), max_inputs=report_inputs(args), assets=args.assets)
    if not args.quiet:
        print(f"report: {path}")
    if args.open:
        webbrowser.open(Path(path).resolve().as_uri())
    return 0


def demo(args: argparse.Namespace) -> int:
    """Explain the bundled models with every method of their family."""
    from .demo import run_demo

    return run_demo(args)


def pack(args: argparse.Namespace) -> int:
    """Make an explain-torch folder from a user's model code, checkpoint and tokenizer."""
    from .pack import run as run_pack

    return run_pack(args)
