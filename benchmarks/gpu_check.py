"""GPU check: every method on CUDA gives the CPU's answer, and how much faster it is.

    python benchmarks/gpu_check.py [--autocast bf16] [--out benchmarks/results/gpu_check.json]

Run on a machine with a GPU (it exits 2 without one). For each bundled model and each method
of its family, explains the same inputs on CPU and on CUDA and prints: inputs per second on
each device, the speed-up, and agreement (cosine of the score vectors, and whether the top
feature is the same). Tolerances: cosine >= 0.99 in float32; with --autocast, >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import explain  # noqa: E402
from planted_data import digit_images, gpt_prompts, sentiment_examples  # noqa: E402

CASES = (
    ("sentiment-bert", lambda n: [t for t, _, w in sentiment_examples(8 * n, 3, "heldout") if w][:n], {}),
    ("planted-gpt2", lambda n: [p for p, _, c in gpt_prompts(8 * n, 3, "heldout") if c][:n], {"max_new_tokens": 2}),
    ("digits-cnn", lambda n: [i for i, _, b in digit_images(8 * n, 3, "heldout") if b][:n], {}),
)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two score arrays (1.0 when both are zero)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 1.0 if na == nb == 0 else float(a @ b / (na * nb + 1e-30))


def main() -> int:
    """Compare CPU and CUDA; print the table; write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--autocast", choices=("bf16", "fp16"))
    parser.add_argument("-n", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine", file=sys.stderr)
        return 2
    rows = []
    tol = 0.95 if args.autocast else 0.99
    for name, make, options in CASES:
        inputs = make(args.n)
        cpu = explain.load(ROOT / "examples" / "models" / name, device="cpu")
        gpu = explain.load(ROOT / "examples" / "models" / name, device="cuda", autocast=args.autocast)
        for method in explain.methods.for_family(cpu.family):
            explain.explain(gpu, inputs[:1], methods=[method], **options)  # warm-up: kernels, numba
            t0 = time.perf_counter()
            a = explain.explain(cpu, inputs, methods=[method], **options)
            t1 = time.perf_counter()
            b = explain.explain(gpu, inputs, methods=[method], **options)
            torch.cuda.synchronize()
            t2 = time.perf_counter()
            cos = [cosine(x.scores, y.scores) for x, y in zip(a, b)]
            same_top = np.mean([int(np.argmax(x.scores)) == int(np.argmax(y.scores)) for x, y in zip(a, b)])
            rows.append({"model": name, "method": method, "cpu_inputs_per_s": len(inputs) / (t1 - t0),
                         "gpu_inputs_per_s": len(inputs) / (t2 - t1), "min_cosine": min(cos), "same_top": float(same_top),
                         "ok": min(cos) >= tol})
    print(f"device: {torch.cuda.get_device_name(0)}; autocast: {args.autocast}")
    print(f"{'model':<16}{'method':<11}{'cpu in/s':>10}{'gpu in/s':>10}{'speed-up':>9}{'min cos':>9}{'same top':>9}  ok")
    for r in rows:
        print(f"{r['model']:<16}{r['method']:<11}{r['cpu_inputs_per_s']:>10.2f}{r['gpu_inputs_per_s']:>10.2f}"
              f"{r['gpu_inputs_per_s'] / r['cpu_inputs_per_s']:>9.1f}{r['min_cosine']:>9.4f}{r['same_top']:>9.2f}  {r['ok']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": torch.cuda.get_device_name(0), "autocast": args.autocast, "rows": rows}, indent=1) + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
