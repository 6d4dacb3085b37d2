"""Helpers every sub-command shares: load options, settings, inputs, the run summary."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from explain.adapters.pairs import pair_inputs
from explain import methods as registry
from explain.distributed.sources import FILE_SUFFIXES, FileInput
from explain.errors import ExplainError, InputError, MethodError
from explain.results.explanation import Results

from .inputs import expand_images, read_input_file


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return explain.load's keyword arguments from the run's options."""
    return {
        "device": args.device,
        "trust_remote_code": args.trust_remote_code,
        "allow_pickle": args.allow_pickle,
        "allow_missing_weights": args.allow_missing_weights,
        "batch_size": args.batch_size,
        "autocast": args.autocast,
        "max_memory": args.max_memory,
        "device_map": args.device_map,
    }


def load_model(checkpoint: str, **options: Any) -> Any:
    """Return explain.load(checkpoint, **options), its warnings (e.g. an image preprocessing the
    checkpoint did not state and that was assumed) printed as `explain: warning:` lines."""
    import explain
    from explain.errors import ExplainWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExplainWarning)
        model = explain.load(checkpoint, **options)
    for w in caught:
        if issubclass(w.category, ExplainWarning):
            print(f"explain: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return model


def report_inputs(args: argparse.Namespace) -> int | None:
    """Return the report's full-section limit from --max-inputs (0: every input)."""
    n = getattr(args, "max_inputs", 100)
    if n is None or n < 0:
        raise ExplainError(f"--max-inputs {n}: give a number of inputs, or 0 for all of them")
    return n or None


def set_threads(threads: int | None) -> None:
    """Let torch use `threads` CPU threads (None: leave torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise ExplainError(f"--threads {threads}: give a positive number of threads")
    import torch

    torch.set_num_threads(threads)


def parse_settings(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Return {method: {option: value}} from --set METHOD.OPTION=VALUE and the shortcuts."""
    settings: dict[str, dict[str, Any]] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        method, dot, option = key.partition(".")
        if not sep or not dot or not method or not option:
            raise MethodError(f"--set {item!r} is not METHOD.OPTION=VALUE (e.g. --set ig.n_steps=100)")
        registry.get(method)
        settings.setdefault(method.strip().lower(), {})[option.strip()] = value.strip()
    for flag, method, option in (("ig_steps", "ig", "n_steps"), ("shap_max_evals", "shap", "max_evals"), ("lime_samples", "lime", "num_samples")):
        if getattr(args, flag) is not None:
            settings.setdefault(method, {})[option] = getattr(args, flag)
    return settings


def gather_inputs(args: argparse.Namespace, family: str) -> list[Any]:
    """Return the inputs named on the command line, checked against the model's family."""
    items: list[Any] = []
    for group in input_groups(args, family):
        items.extend(read_input_file(group.path, group.column, group.pair_column) if isinstance(group, FileInput) else group)
    if not items:
        raise InputError(no_inputs_message(family))
    return items


def input_groups(args: argparse.Namespace, family: str) -> list[list[Any] | FileInput]:
    """Return the command line's inputs in order, as lists of items and input files (not yet read)."""
    groups: list[list[Any] | FileInput] = []
    if family == "image-classifier":
        if args.text or args.prompt:
            raise InputError("this checkpoint is an image classifier: give --image PATH (or image paths), not --text/--prompt")
        groups.append(expand_images([*args.image, *args.inputs]))
    else:
        if args.image:
            raise InputError(f"this checkpoint is a {family}: --image needs an image classifier")
        if family == "text-classifier" and args.prompt:
            raise InputError("this checkpoint is a text classifier: use --text, not --prompt")
        groups.append([*pair_inputs(args.text, args.text_pair or None), *args.prompt])
        for raw in args.inputs:
            p = Path(raw)
            groups.append(FileInput(raw, args.column, args.pair_column) if p.suffix.lower() in FILE_SUFFIXES and p.is_file() else [raw])
    for f in args.input:
        if not Path(f).is_file():
            raise InputError(f"input file not found: {f}")
        groups.append(FileInput(f, args.column, args.pair_column))
    return groups


def no_inputs_message(family: str) -> str:
    """Return the error for a run given no inputs."""
    kind = "--image PATH" if family == "image-classifier" else ("--prompt TEXT" if family == "causal-lm" else "--text TEXT")
    return f"no inputs: give {kind} or --input FILE"


def print_summary(results: Results, results_path: Path, report_path: Path | None) -> None:
    """Print per-method inputs, seconds and rows, failures, and where the files are."""
    rows = []
    for name in results.run.get("methods", []):
        mine = results.by_method(name)
        rows.append((name, len({e.input for e in mine}), sum(e.seconds for e in mine), sum(e.rows for e in mine)))
    print(f"{'method':<12}{'inputs':>8}{'seconds':>10}{'rows':>10}")
    for name, n, secs, nrows in rows:
        print(f"{name:<12}{n:>8}{secs:>10.2f}{nrows:>10}")
    if results.failures:
        print(f"{len(results.failures)} failure(s):")
        for line in failure_lines(results):
            print(f"  {line}")
    print(f"results: {results_path}")
    if report_path:
        print(f"report:  {report_path}")


def failure_lines(results: Results) -> list[str]:
    """Return one line per failure: the method (if one), the input, the error."""
    lines = []
    for f in results.failures:
        where = "" if f.error.startswith(f"input {f.input}") else f"input {f.input}: "
        lines.append(f"{f.method + ' on ' if f.method else ''}{where}{f.error}")
    return lines


def self_check_summary(results: Results) -> str | None:
    """Return the run's failed self-checks counted in one line (failures and notes print apart)."""
    from explain.running.run_warnings import summary

    text = summary(Results(list(results), model=results.model, inputs=[], failures=[], run=results.run))
    return text


def read_rationales(path: str | None) -> dict[int, Any] | None:
    """Return {input index: words or a boolean mask} from a rationale JSON file (None if no file)."""
    if not path:
        return None
    import json

    import numpy as np
    from PIL import Image

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        out: dict[int, Any] = {}
        for key, value in doc.items():
            if isinstance(value, str):  # an image mask: white (> 127) marks the rationale
                mask_path = (Path(path).parent / value) if not Path(value).is_absolute() else Path(value)
                out[int(key)] = np.asarray(Image.open(mask_path).convert("L")) > 127
            else:
                out[int(key)] = [str(w) for w in value]
        return out
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise InputError(f"cannot read rationales from {path}: {e}") from e


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]
