"""Self-contained HTML reports rendered from Results only (never a model).

    from explain import reports
    reports.write_report(results, "out/report.html")   # or explain.report(results, path)

One file per report: plotly.js embedded once, every figure drawn lazily in the browser from a
compact JSON blob per input, no request leaving the page. Same Results, same HTML. With metrics
(explain.metrics.evaluate) each target gets a trust panel and the page a summary table; runs of
many inputs get an across-inputs view and full sections for a sample of MAX_INPUTS of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .dataset import MAX_INPUTS
from .index import write_index
from .page import ASSETS, render_page
from .plotly_bundle import write_asset
from .show import show

if TYPE_CHECKING:
    from explain.results.explanation import Results

__all__ = ["render", "write_report", "show", "write_index"]


def render(results: Results, *, max_inputs: int | None = MAX_INPUTS, asset: str | None = None) -> str:
    """Return the report for `results` as one self-contained HTML document (deterministic).

    A run of more than `max_inputs` inputs (None: no limit) gets a full section for a
    deterministic sample of them, after an across-inputs view computed from all of them.
    `asset`: the file name of a shared plotly.js beside the page (see write_report's assets).
    """
    if not isinstance(results, list) or not hasattr(results, "model") or not hasattr(results, "inputs"):
        raise TypeError(f"reports render the Results returned by explain.explain(), not {type(results).__name__}")
    if max_inputs is not None and (isinstance(max_inputs, bool) or not isinstance(max_inputs, int) or max_inputs < 1):
        raise ValueError(f"max_inputs must be a positive number of inputs or None (every input), got {max_inputs!r}")
    return render_page(results, max_inputs, asset)


def write_report(
    results: Results, path: str | os.PathLike[str], *, max_inputs: int | None = MAX_INPUTS, assets: str = "inline",
) -> Path:
    """Write the report for `results` to `path` atomically and return the path (`max_inputs`: see render).

    assets="inline" (the default) makes one self-contained file; assets="shared" writes plotly.js
    once beside the report (several reports in one folder share it) and loads it from there.
    """
    from explain.results.results_io import write_atomic

    if assets not in ASSETS:
        raise ValueError(f"assets must be one of {', '.join(ASSETS)}, got {assets!r}")
    path = Path(path)
    asset = write_asset(path.parent) if assets == "shared" else None
    write_atomic(path, render(results, max_inputs=max_inputs, asset=asset))
    return path
