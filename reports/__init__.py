"""Self-contained HTML reports rendered from Results only (never a model).

    import reports
    reports.write_report(results, "out/report.html")   # or explain.report(results, path)

One file per report: plotly.js embedded once, every figure drawn lazily in the browser from a
compact JSON blob per input, no request leaving the page. Same Results, same HTML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .page import render_page

if TYPE_CHECKING:
    from explain.explanation import Results

__all__ = ["render", "write_report"]


def render(results: Results) -> str:
    """Return the report for `results` as one self-contained HTML document (deterministic)."""
    if not isinstance(results, list) or not hasattr(results, "model") or not hasattr(results, "inputs"):
        raise TypeError(f"reports render the Results returned by explain.explain(), not {type(results).__name__}")
    return render_page(results)


def write_report(results: Results, path: str | os.PathLike[str]) -> Path:
    """Write the report for `results` to `path` atomically and return the path."""
    from explain.results_io import write_atomic

    path = Path(path)
    write_atomic(path, render(results))
    return path
