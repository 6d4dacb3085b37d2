"""Our side of a speed row, in its own process: explain.explain on a text classifier folder.

    python benchmarks/speed_ours.py SPEC.json OUT.json

SPEC: {"method", "folder", "texts", "settings", "warm", "record"}. Writes compute seconds,
rows per input (recorded at the model's forward, the same way as the direct side), the top
word, the per-input work our method chose (so the direct side can be given the same), the
pure-forward time of the exact rows, and this configuration's own peak memory.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RowRecorder, peak_mb, replay_seconds, rss_mb  # noqa: E402

import explain  # noqa: E402


def work_of(e: explain.Explanation) -> dict[str, Any]:
    """Return the per-input work an explanation did, as the direct side takes it."""
    s = e.settings
    if e.method == "ig":
        return {"n_steps": int(s["n_steps"]), "method": s.get("method", "gausslegendre")}
    used = e.extras.get("budget", {}).get("used")  # an adaptive budget: settings hold its cap, not the work done
    if e.method == "shap":
        return {"max_evals": int(used or s["max_evals"])}
    return {"num_samples": int(used or s["num_samples"])}


def main(spec_path: str, out_path: str) -> None:
    """Explain the spec's texts with explain; write the figures as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    model = explain.load(spec["folder"], device="cpu")
    loaded_mb = rss_mb()
    method, settings, texts = spec["method"], spec.get("settings", {}), spec["texts"]
    if spec.get("warm"):
        explain.explain(model, texts[:1], methods=[method], **{method: settings})
    recorder = RowRecorder(model.model)
    t0 = time.perf_counter()
    res = explain.explain(model, texts, methods=[method], **{method: settings})
    compute = time.perf_counter() - t0
    recorder.remove()
    if res.failures:
        raise SystemExit(f"failures: {res.failures}")
    out: dict[str, Any] = {
        "compute_s": compute,
        "rows": [e.rows for e in res],
        "recorded_rows": recorder.rows,
        "top": [e.features[int(e.scores.argmax())] for e in res],
        "n_features": [len(e.features) for e in res],
        "work": [work_of(e) for e in res],
        "load_rss_mb": loaded_mb,
    }
    if spec.get("record"):
        out["fwd_s"] = replay_seconds(model.model, recorder.calls)
    out["peak_mb"] = peak_mb()
    Path(out_path).write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
