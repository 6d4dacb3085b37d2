"""`explain demo`: explain the bundled BERT, GPT and CNN models with every method of their family."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import explain
from explain import methods as registry
from explain.running.engine import run
from explain.errors import ExplainError
from explain.results.results_io import save, write_atomic

from .options import print_summary
from .inputs import expand_images, read_input_file
from .progress import Progress

ROOT = Path(__file__).resolve().parents[1]
DEMOS: tuple[tuple[str, str, int], ...] = (  # (model folder, inputs under examples/demo_inputs, new tokens)
    ("sentiment-bert", "reviews.txt", 0),
    ("planted-gpt2", "prompts.txt", 3),
    ("digits-cnn", "digits", 0),
)


def run_demo(args: argparse.Namespace) -> int:
    """Write one report per bundled model and an index page; return the exit code."""
    models = Path(args.models) if args.models else ROOT / "examples" / "models"
    inputs_dir = ROOT / "examples" / "demo_inputs"
    if not models.is_dir():
        raise ExplainError(f"bundled models not found at {models}: run from a source checkout or pass --models DIR")
    out = Path(args.out)
    asset = None
    if args.assets == "shared":  # one plotly.js for the three reports, in the demo folder
        from explain.reports.plotly_bundle import write_asset

        asset = "../" + write_asset(out)
    entries: list[dict[str, Any]] = []
    failed = False
    for name, source, new_tokens in DEMOS:
        model = explain.load(models / name, device=args.device)
        path = inputs_dir / source
        inputs = expand_images([str(path)]) if path.is_dir() else read_input_file(str(path))
        methods = registry.for_model(model)
        if not args.quiet:
            print(f"== {name} ({model.family}): {len(inputs)} inputs x {', '.join(methods)}")
        progress = Progress(len(inputs) * len(methods), quiet=args.quiet)
        results = run(model, inputs, methods=methods, progress=progress, max_new_tokens=new_tokens or 8, errors="record", warn=False)
        progress.close()
        folder = out / name
        save(results, folder / "results.json")
        if asset is None:
            report = explain.report(results, str(folder / "report.html"))
        else:
            from explain.reports import render

            write_atomic(folder / "report.html", render(results, asset=asset))
            report = str(folder / "report.html")
        if not args.quiet:
            print_summary(results, folder / "results.json", Path(report))
        entries.append({"title": name, "href": f"{name}/report.html", "results": results})
        failed = failed or bool(results.failures)
    from explain.reports import write_index

    write_index(entries, out / "index.html", title="explain demo")  # styled like the reports, a verdict per model
    if not args.quiet:
        print(f"demo index: {out / 'index.html'}")
    return 1 if failed else 0
