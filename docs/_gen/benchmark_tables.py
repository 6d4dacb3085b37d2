"""Markdown tables rendered from the JSON files the benchmarks wrote, so no figure is typed by hand.

    python docs/_gen/benchmark_tables.py                 # every file in benchmarks/results/
    python docs/_gen/benchmark_tables.py speed startup   # some of them

The documentation build calls `render(name)` for each `<!-- generated: benchmark NAME -->` line.
A known file gets its chosen columns, in the order a reader wants them; a field the benchmark
added since is named under the table ("also in the file: ..."), and a file this script does not
know is rendered whole (its rows as a table, its other values as a list), so a new benchmark or
a new field shows up in the docs without a change here.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

# Per file, its tables: "columns" (key, header) read from each of the file's rows, or "values"
# (key, header) read from the file itself; a key may be dotted into nested dicts. "quiet" names
# fields left out of the "also in the file" line on purpose.
SPECS: dict[str, list[dict[str, Any]]] = {
    "speed": [{
        "title": "explain against captum / shap / lime called directly (whole process, median of the runs)",
        "columns": [("model", "model"), ("method", "method"), ("library", "library"), ("inputs", "inputs"),
                    ("whole_s_ours", "whole process, explain (s)"), ("whole_s_direct", "direct (s)"),
                    ("whole_ratio", "explain ÷ direct"), ("compute_s_ours", "compute, explain (s)"),
                    ("compute_s_direct", "compute, direct (s)"), ("warm_s_ours", "warm compute, explain (s)"),
                    ("warm_s_direct", "warm compute, direct (s)"), ("rows_per_input_ours", "rows/input, explain"),
                    ("rows_per_input_direct", "rows/input, direct"), ("t_over_fwd_ours", "time ÷ pure forward, explain"),
                    ("t_over_fwd_direct", "time ÷ pure forward, direct"), ("peak_mb_ours", "peak MB, explain"),
                    ("peak_mb_direct", "peak MB, direct")],
        # per-run lists and the work each side was handed are in the file, not the table
        "quiet": {"runs", "work_ours", "work_direct", "top_ours", "top_direct", "features_ours", "features_direct",
                  "repeats", "warm_repeats"},
    }],
    "quality_per_row": [{
        "title": "Agreement with the same method at 10x the library's default budget, against the model rows spent "
                 "(means over the inputs; docs/speed.md has the spreads and the targets)",
        "columns": [("case", "case"), ("method", "method"), ("rule", "budget rule"), ("inputs", "inputs"),
                    ("rows.mean", "model rows per input"), ("top1.mean", "top-1"), ("top3.mean", "top-3"),
                    ("sign.mean", "sign"), ("top_clear.mean", "features that matter")],
        # the spreads and per-input lists are in docs/speed.md's tables; the seconds were taken
        # while other work loaded the machine: not a figure to quote
        "quiet": {"rows", "top1", "top3", "sign", "top_clear", "settings", "reference", "rows_per_input",
                  "cached_rows_per_input", "seconds", "budget_used", "stopped", "reliable"},
    }],
    "startup": [{
        "title": "Start-up: wall seconds (median of interleaved runs)",
        "values": [("python_startup_s", "`python -c pass`"), ("help_s", "`explain --help`"),
                   ("import_explain_s", "`import explain`"), ("import_engine_s", "import the engine (imports torch)"),
                   ("bare_load_s", "bare script: load the bundled BERT and its tokenizer"),
                   ("bare_load_with_teardown_s", "the same, leaving with the interpreter's teardown"),
                   ("run_with_report.whole_s", "`explain run`, 1 input, IG, with report"),
                   ("run_with_report.fixed_s", "its fixed cost beyond the bare load"),
                   ("run_no_report.whole_s", "the same, `--no-report`"),
                   ("run_no_report.fixed_s", "its fixed cost beyond the bare load")],
        "quiet": {"run_with_report", "run_no_report", "load_average", "help_cpu_s"},
    }],
    "report_size": [{
        "title": "Report size",
        "values": [("ten_inputs.inline_bytes", "10 inputs, self-contained (bytes)"),
                   ("ten_inputs.shared_page_bytes", "10 inputs, `--assets shared`: the page (bytes)"),
                   ("ten_inputs.shared_asset_bytes", "10 inputs, `--assets shared`: plotly.js once (bytes)"),
                   ("result.inputs", "the larger report: inputs"), ("result.methods", "methods"),
                   ("result.bytes", "its size (bytes)"), ("result.bytes_per_input", "bytes per input"),
                   ("result.ready_ms", "interactive after (ms, headless chromium)"),
                   ("result.within_budget", "within the budget")],
        "quiet": {"browser_loads", "result", "ten_inputs"},
    }],
    "realsize": [{
        "title": "Real-size models, one input (random-weight shapes; EfficientNet-Lite0 and minilm-sentiment pretrained)",
        "columns": [("model", "model"), ("size", "size"), ("method", "method"), ("sec_per_input", "seconds per input"),
                    ("sec_per_row", "seconds per row (forward)"), ("rows_per_input", "rows per input"),
                    ("peak_mb", "peak MB"), ("built_rss_mb", "model resident MB")],
        "quiet": {"parameters", "features", "batch", "process_s"},
    }],
    "batching": [{
        "title": "Inputs side by side (--batch-inputs)",
        "columns": [("method", "method"), ("in_flight", "inputs in flight"), ("inputs", "inputs"),
                    ("compute_seconds", "compute (s)"), ("whole_seconds", "whole process (s)"),
                    ("speedup_compute", "speed-up"), ("rows_per_input", "rows per input"),
                    ("max_abs_score_diff", "max score difference"), ("rows_equal", "same rows"),
                    ("top_equal", "same top feature")],
        "quiet": {"batch_inputs", "peak_rss_mib", "failures"},
    }],
    "ray_throughput": [{
        "title": "Ray throughput",
        "columns": [("engine", "engine"), ("workers", "workers"), ("wall_s", "wall clock (s)"),
                    ("wall_per_s", "inputs/s over the whole run"), ("steady_per_s", "inputs/s once running"),
                    ("first_shard_after_s", "first shard after (s)")],
    }],
}

# Keys of a file's top level that describe the measurement, shown in the line above its tables.
CONTEXT_KEYS = ("date", "quick", "partial", "inputs_per_model", "inputs", "device", "repeats")


def available() -> list[str]:
    """Return the names (file stems) of the benchmark result files, sorted."""
    return sorted(p.stem for p in RESULTS.glob("*.json"))


def render(name: str, results: Path = RESULTS) -> str:
    """Return the Markdown for benchmarks/results/NAME.json: a source line and its tables."""
    path = results / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    out = [_source_line(name, data)]
    specs = SPECS.get(name)
    if isinstance(data, dict) and specs:
        for spec in specs:
            out.append(_render_spec(spec, data))
    else:
        out.append(_render_generic(data))
    return "\n\n".join(part for part in out if part) + "\n"


def render_all(results: Path = RESULTS) -> str:
    """Return every result file's Markdown, one section each."""
    parts = []
    for name in available():
        parts.append(f"### `{name}.json`\n\n" + render(name, results))
    return "\n".join(parts)


def _source_line(name: str, data: Any) -> str:
    """Return 'From benchmarks/results/NAME.json (date, machine, load)': what a reader needs to weigh it."""
    bits = []
    if isinstance(data, dict):
        machine = data.get("machine")
        date = data.get("date") or (machine.get("date") if isinstance(machine, dict) else None)
        if date:
            bits.append(f"measured {date}")
        if isinstance(machine, dict):
            cpus = machine.get("cpu_count", machine.get("cpus"))
            if cpus:
                bits.append(f"{cpus} CPUs")
            if machine.get("torch"):
                bits.append(f"torch {machine['torch']}")
            if machine.get("load_average") is not None:
                bits.append(f"1-minute load average {_fmt(machine['load_average'])}")
        elif isinstance(machine, str):
            bits.append(machine)
        if data.get("load_average") is not None and not isinstance(machine, dict):
            bits.append(f"load average {_fmt(data['load_average'])}")
        for key in ("quick", "partial"):
            if data.get(key):
                bits.append(f"`{key}` run")
    detail = f" ({', '.join(bits)})" if bits else ""
    return f"From `benchmarks/results/{name}.json`{detail}."


def _render_spec(spec: dict[str, Any], data: dict[str, Any]) -> str:
    """Render one curated table, then name the fields of the file it does not show."""
    quiet = set(spec.get("quiet", ()))
    parts = [f"**{spec['title']}**"]
    if "columns" in spec:
        rows = [r for r in data.get("rows", []) if isinstance(r, dict)]
        columns = [c for c in spec["columns"] if any(_get(r, c[0]) is not None for r in rows)]
        parts.append(_table([h for _, h in columns], ([_fmt(_get(r, k)) for k, _ in columns] for r in rows)))
        shown = {c[0] for c in spec["columns"]}
        extra = sorted({k for r in rows for k in r} - shown - quiet)
    else:
        values = [(k, h) for k, h in spec["values"] if _get(data, k) is not None]
        parts.append(_table(["what", "value"], ([h, _fmt(_get(data, k))] for k, h in values)))
        shown = {k.split(".")[0] for k, _ in spec["values"]}
        extra = sorted(set(data) - shown - quiet - {"machine", "rows", "benchmark", *CONTEXT_KEYS})
    if extra:
        parts.append("Also in the file: " + ", ".join(f"`{k}`" for k in extra) + ".")
    return "\n\n".join(parts)


def _render_generic(data: Any) -> str:
    """Render a file no spec describes, whole: every group of like records as a table.

    A record is a dict whose values are all scalars (a row of `rows`, or a leaf such as
    models -> digits-cnn -> agreement -> "ig|shap" -> {n, spearman_mean, ...}); records with the
    same keys share one table, with the path that leads to each as its first column. Scalars
    elsewhere go into a last field / value table.
    """
    groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
    loose: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            scalars = {k: v for k, v in node.items() if not isinstance(v, (dict, list))}
            nested = {k: v for k, v in node.items() if isinstance(v, (dict, list))}
            if scalars and path:
                groups.setdefault(tuple(scalars), []).append((path, scalars))
            elif scalars:
                loose.extend(scalars.items())
            for k, v in nested.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            if all(not isinstance(x, (dict, list)) for x in node):
                loose.append((path, node))
            else:
                for i, x in enumerate(node):
                    walk(x, f"{path}[{i}]")
        else:
            loose.append((path, node))

    walk({k: v for k, v in data.items() if k != "machine"} if isinstance(data, dict) else data, "")
    parts = []
    for keys, records in groups.items():
        headers = ["where"] + [_fmt(k) for k in keys]
        parts.append(_table(headers, ([_fmt(p)] + [_fmt(r.get(k)) for k in keys] for p, r in records)))
    if loose:
        parts.append(_table(["field", "value"], ([f"`{_fmt(k)}`", _fmt(v)] for k, v in loose)))
    return "\n\n".join(parts)


def _get(d: Any, key: str) -> Any:
    """Return d[a][b] for key 'a.b', or None where a level is missing."""
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _fmt(v: Any) -> str:
    """Format a value for a table: floats to 3 significant figures below 1, 2 decimals to 100, 1 to 1000."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v.is_integer() and abs(v) < 10_000:  # a count stored as a float
            return str(int(v))
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    """Return a Markdown pipe table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    names = sys.argv[1:] or available()
    print("\n".join(f"## {n}\n\n{render(n)}" for n in names))
