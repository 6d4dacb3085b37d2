"""Cross-input batching: 100 short texts, one input at a time (--batch-inputs 1) vs side by side.

The MiniLM-sized classifier (random weights, the bundled tokenizer; benchlib) explains 100
held-out planted-data sentences of 10-15 words with SHAP and with LIME at their defaults,
through the CLI as a user runs it, once per setting of --batch-inputs. For each run: whole
process seconds, compute seconds (results.run["seconds"]), rows per input, and against the
one-at-a-time run: whether every input's rows are equal and the largest score difference.

Torch runs with --threads 1 by default (the same in every arm): on a shared 2-core machine
torch's default two threads wait on each other whenever another process holds a core, which
makes every small model call slow and would credit batching with a gain that is really the
thread pool's (use --threads 0 for torch's default). The load average is recorded.

    python benchmarks/batching.py            # 100 texts, MiniLM (minutes)
    python benchmarks/batching.py --quick    # 8 texts, a 1-layer model (seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import ROOT, bert_classifier, machine, run_process, short_sentences  # noqa: E402


def run_cli(folder: Path, data: Path, method: str, k: str, threads: int, out: Path, extra: list[str]) -> dict[str, Any]:
    """Run `explain run` once; return whole-process seconds, compute seconds, rows and scores per input."""
    cmd = [sys.executable, "-m", "explain.cli.main", "run", str(folder), "--input", str(data), "--methods", method,
           "--batch-inputs", k, "--out", str(out), "--no-report", "--quiet", "--force", "--device", "cpu", *extra]
    if threads:
        cmd += ["--threads", str(threads)]
    wall, rss, _ = run_process(cmd, ok=(0, 1))
    doc = json.loads((out / "results.json").read_text())
    import explain

    res = explain.open_results(out / "results.json")
    return {
        "whole_seconds": round(wall, 2),
        "compute_seconds": doc["run"]["seconds"],
        "batch_inputs": doc["run"].get("batch_inputs"),
        "peak_rss_mib": round(rss),
        "failures": len(res.failures),
        "rows": {e.input: e.rows for e in res},
        "scores": {e.input: np.asarray(e.scores, dtype=np.float64) for e in res},
        "top": {e.input: int(np.argmax(e.scores)) for e in res},
    }


def compare(ref: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """Return the equality fields of `got` against the one-at-a-time run `ref`."""
    same_inputs = ref["rows"].keys() == got["rows"].keys()
    diff = max((float(np.max(np.abs(ref["scores"][i] - got["scores"][i]))) for i in ref["scores"]), default=0.0) if same_inputs else float("inf")
    return {
        "rows_equal": same_inputs and ref["rows"] == got["rows"],
        "top_equal": same_inputs and ref["top"] == got["top"],
        "max_abs_score_diff": diff,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 texts, a 1-layer model, small budgets")
    ap.add_argument("--inputs", type=int, default=100)
    ap.add_argument("--k", help="settings compared with 1, comma-separated (default: 8,16; --quick: 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in every arm (0: torch's default)")
    ap.add_argument("--out", default=str(HERE / "results" / "batching.json"))
    args = ap.parse_args()
    n, shape = (8, "tiny") if args.quick else (args.inputs, "minilm")
    extra = ["--shap-max-evals", "100", "--lime-samples", "100"] if args.quick else []
    ks = (args.k or ("8" if args.quick else "8,16")).split(",")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        folder = bert_classifier(tmp / shape, shape)
        data = tmp / "texts.txt"
        data.write_text("\n".join(short_sentences(n)) + "\n", encoding="utf-8")
        for method in ("shap", "lime"):
            ref: dict[str, Any] | None = None
            for k in ["1", *ks]:
                got = run_cli(folder, data, method, k, args.threads, tmp / f"{method}-{k}", extra)
                ref = ref or got
                row = {"method": method, "batch_inputs": k, "in_flight": got["batch_inputs"], "inputs": n,
                       "whole_seconds": got["whole_seconds"], "compute_seconds": got["compute_seconds"],
                       "rows_per_input": round(float(np.mean(list(got["rows"].values()))), 1),
                       "peak_rss_mib": got["peak_rss_mib"], "failures": got["failures"], **compare(ref, got)}
                row["speedup_compute"] = round(ref["compute_seconds"] / max(got["compute_seconds"], 1e-9), 2)
                rows.append(row)
                print(f"  {method} --batch-inputs {k}: {got['compute_seconds']}s compute", file=sys.stderr, flush=True)
    info = machine()
    info["torch_threads"] = args.threads or info["torch_threads"]
    doc = {"benchmark": "batching", "model": shape, "machine": info, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{n} texts of 10-15 words, {shape} classifier, torch threads {info['torch_threads']}, load average {info['load_average']:.2f}")
    print(f"{'method':7} {'K':>5} {'in flight':>9} {'whole s':>8} {'compute s':>9} {'speed-up':>8} {'rows/input':>10} {'rows equal':>10} {'top equal':>9} {'max |diff|':>10}")
    for r in rows:
        print(f"{r['method']:7} {r['batch_inputs']:>5} {r['in_flight']:>9} {r['whole_seconds']:>8.2f} {r['compute_seconds']:>9.2f} "
              f"{r['speedup_compute']:>7.2f}x {r['rows_per_input']:>10} {str(r['rows_equal']):>10} {str(r['top_equal']):>9} {r['max_abs_score_diff']:>10.2e}")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
