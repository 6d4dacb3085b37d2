"""Throughput of --engine ray: inputs per second with 1 and 2 workers, beside the in-process run.

    python benchmarks/ray_throughput.py [--inputs 400] [--method ig] [--workers 1,2]
                                        [--out benchmarks/results/ray_throughput.json]

Explains the same held-out sentences of the bundled sentiment-bert with each setting, on a
local Ray cluster started per run. Reported per run: wall seconds (cluster start, worker start
and model loads included), and the steady rate: inputs finished after the first shard divided
by the time from the first shard to the last, which is what a long run converges to. Each
worker uses one torch thread; the in-process baseline uses one thread too, so the ratio shows
what the workers add, not thread scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

SETTINGS = {"ig": {"ig": {"n_steps": 32, "adaptive": False}}, "ablation": {}, "shap": {"shap": {"max_evals": 200}}}


def main() -> None:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=400)
    parser.add_argument("--method", default="ig", choices=sorted(SETTINGS))
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ray_throughput.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")

    import torch

    import explain
    from explain.distributed import RayOptions, plan, run_ray
    from planted_data import sentiment_examples

    torch.set_num_threads(1)
    model_path = ROOT / "examples" / "models" / "sentiment-bert"
    texts = [t for t, _, _ in sentiment_examples(args.inputs, seed=7, split="heldout")]
    settings = SETTINGS[args.method]
    rows: list[dict[str, Any]] = []

    model = explain.load(model_path, device="cpu")
    explain.explain(model, texts[:2], methods=[args.method], **settings)  # imports and first-call costs
    t0 = time.perf_counter()
    explain.explain(model, texts, methods=[args.method], **settings)
    secs = time.perf_counter() - t0
    rows.append({"engine": "in-process", "workers": 1, "wall_s": round(secs, 2), "steady_per_s": round(len(texts) / secs, 2),
                 "wall_per_s": round(len(texts) / secs, 2)})
    print(rows[-1], flush=True)

    for n in [int(x) for x in args.workers.split(",")]:
        folder = Path(tempfile.mkdtemp(prefix="ray-bench-"))
        stamps: list[tuple[float, int]] = []
        t0 = time.perf_counter()
        run_ray(str(model_path), plan([texts]), str(folder / "out"),
                job={"methods": [args.method], "seed": 0, "settings": settings},
                load={"device": "cpu"}, options=RayOptions(workers=n, shard_size=args.shard_size),
                on_shard=lambda row: stamps.append((time.perf_counter(), int(row["inputs"]))))
        wall = time.perf_counter() - t0
        shutil.rmtree(folder, ignore_errors=True)
        first_t = stamps[0][0]
        after_first = sum(k for _, k in stamps[1:])
        steady = after_first / (stamps[-1][0] - first_t) if len(stamps) > 1 and stamps[-1][0] > first_t else float("nan")
        rows.append({"engine": "ray", "workers": n, "wall_s": round(wall, 2), "steady_per_s": round(steady, 2),
                     "wall_per_s": round(len(texts) / wall, 2), "first_shard_after_s": round(first_t - t0, 2)})
        print(rows[-1], flush=True)

    doc = {"method": args.method, "settings": settings, "inputs": len(texts), "shard_size": args.shard_size,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                       "cuda": torch.cuda.is_available()},
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
