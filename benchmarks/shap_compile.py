"""What shap's numba kernels cost a process, and what our numpy stand-ins cost instead.

Each configuration runs in its own fresh process (numba compiles once per process), `--repeats`
times, and times two Partition explanations of the same 20-feature model one after the other:
the first call (cold: shap as installed compiles `make_masks`, `_build_fixed_output` and
`lower_credit` there), then a second (warm). `shap` is shap's explainer as installed; `ours` is
explain's `shap_kernels.explainer_class` (shap's code on numpy kernels, shap's modules untouched).
`import_s` is `import shap` in that process (paid by both). Writes
benchmarks/results/shap_compile.json.

    python benchmarks/shap_compile.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, machine  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import shap
t1 = time.perf_counter()
from explain.adapters.base import contiguous_linkage
from explain.methods.shap_kernels import explainer_class

d = 20
w = np.random.default_rng(0).normal(size=d)
def f(x):
    keep = np.asarray(x, dtype=float)
    return np.tanh(keep @ w) + keep[:, 2] * keep[:, 9]

masker = shap.maskers.Partition(np.zeros((1, d)), clustering=contiguous_linkage(d))
calls = []
for _ in range(2):
    t = time.perf_counter()
    if sys.argv[1] == "ours":
        cls = explainer_class(np.random.RandomState(0))
        assert cls is not None
    else:
        np.random.seed(0)
        cls = shap.explainers.Partition
    values = cls(f, masker)(np.ones((1, d)), max_evals=300, silent=True).values[0]
    calls.append(time.perf_counter() - t)
print(json.dumps({"import_s": t1 - t0, "first_call_s": calls[0], "second_call_s": calls[1],
                  "values_sum": float(values.sum())}))
"""


def main() -> None:
    """Run both configurations in fresh processes and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "shap_compile.json")
    args = ap.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"shap": [], "ours": []}
    for _ in range(args.repeats):
        for side in runs:  # alternate, so a load change on the machine hits both sides alike
            proc = subprocess.run([sys.executable, "-c", CHILD, side], capture_output=True, text=True, cwd=ROOT, check=True)
            runs[side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    summary = {side: {key: {"median": statistics.median(r[key] for r in rs), "min": min(r[key] for r in rs),
                            "max": max(r[key] for r in rs)}
                      for key in ("import_s", "first_call_s", "second_call_s")} for side, rs in runs.items()}
    shap_first, ours_first = summary["shap"]["first_call_s"]["median"], summary["ours"]["first_call_s"]["median"]
    out = {
        "machine": machine(),
        "what": "fresh process per run: import shap, then two Partition explanations (20 features, max_evals=300)",
        "repeats": args.repeats,
        "runs": runs,
        "summary": summary,
        "compile_cost_s": shap_first - summary["shap"]["second_call_s"]["median"],
        "first_call_saved_s": shap_first - ours_first,
        "same_values": len({round(r["values_sum"], 9) for rs in runs.values() for r in rs}) == 1,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("compile_cost_s", "first_call_saved_s", "same_values")}))


if __name__ == "__main__":
    main()
