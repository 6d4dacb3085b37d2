"""explain: attention maps, integrated gradients, SHAP, LIME and more for PyTorch models.

    import explain
    model = explain.load("path/to/checkpoint")          # HF folder or plain CNN
    # or: explain.from_model(hf_model, tokenizer) / explain.from_model(cnn, preprocessing={...})
    results = explain.explain(model, ["a great film"], methods=["ig", "shap"])
    explain.save(results, "out/results.json")
    explain.report(results, "out/report.html")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .engine import explain
from .errors import CheckpointError, DeviceError, ExplainError, InputError, MethodError, TargetError
from .explanation import Explanation, Failure, InputRecord, ModelInfo, Results, SelfCheck, Target
from .loading import load
from .results_files import open_results
from .results_io import save
from .wrapping import from_model


def report(results: Results, path: str, *, max_inputs: int | None = 100) -> str:
    """Render `results` into one self-contained HTML file at `path`; return the path.

    Runs of more than `max_inputs` inputs get the dataset-level view and a full section for a
    deterministic sample of that many inputs (None: a section for every input).
    """
    from explain.reports import write_report

    return str(write_report(results, path, max_inputs=max_inputs))


__all__ = [
    "CheckpointError",
    "DeviceError",
    "ExplainError",
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
    "explain",
    "from_model",
    "load",
    "open_results",
    "report",
    "save",
]
