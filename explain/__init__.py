"""explain: attention maps, integrated gradients, SHAP, LIME and more for PyTorch models.

    import explain
    model = explain.load("path/to/checkpoint")          # HF folder or plain CNN
    # or: explain.from_model(hf_model, tokenizer) / explain.from_model(cnn, preprocessing={...})
    results = explain.explain(model, ["a great film"], methods=["ig", "shap"])
    explain.save(results, "out/results.json")
    explain.report(results, "out/report.html")

Names are imported on first use, so `import explain` (and `explain --help`) does not pay for
torch and the model libraries until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, DeviceError, ExplainError, ExplainWarning, InputError, MethodError, TargetError
from .version import __version__

if TYPE_CHECKING:
    from .running.engine import explain
    from .results.explanation import Explanation, Failure, InputRecord, ModelInfo, Results, SelfCheck, Target
    from .loading.checkpoint import load
    from .results.results_files import open_results
    from .results.results_io import save
    from .loading.wrapping import from_model

_LAZY = {
    "explain": "running.engine",
    "Explanation": "results.explanation",
    "Failure": "results.explanation",
    "InputRecord": "results.explanation",
    "ModelInfo": "results.explanation",
    "Results": "results.explanation",
    "SelfCheck": "results.explanation",
    "Target": "results.explanation",
    "load": "loading.checkpoint",
    "open_results": "results.results_files",
    "save": "results.results_io",
    "from_model": "loading.wrapping",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'explain' has no attribute {name!r}")


def report(results: Results, path: str, *, max_inputs: int | None = 100, assets: str = "inline") -> str:
    """Render `results` into one self-contained HTML file at `path`; return the path.

    Runs of more than `max_inputs` inputs get the dataset-level view and a full section for a
    deterministic sample of that many inputs (None: a section for every input).
    `assets="shared"` writes plotly.js once beside the report instead of inside it.
    """
    from explain.reports import write_report

    return str(write_report(results, path, max_inputs=max_inputs, assets=assets))


def show(obj: Results | Explanation, *, display: bool = True) -> str:
    """Return the HTML view of Results or of one Explanation, displaying it in Jupyter (shap-style)."""
    from explain.reports.show import show as show_html

    return show_html(obj, display=display)


__all__ = [
    "CheckpointError",
    "DeviceError",
    "ExplainError",
    "ExplainWarning",
    "Explanation",
    "Failure",
    "InputError",
    "InputRecord",
    "MethodError",
    "ModelInfo",
    "Results",
    "SelfCheck",
    "Target",
    "TargetError",
    "__version__",
    "explain",
    "from_model",
    "load",
    "open_results",
    "report",
    "save",
    "show",
]
