"""GPU check: real-size rows on a GPU in fp32 and bf16, bf16 scores against fp32, ours beside captum/shap/lime.

    python benchmarks/gpu_check.py [--dry-run] [-n N] [--out benchmarks/results/gpu_check.json]

For BERT-base (128 tokens), GPT-2 small (128 tokens) and ResNet-50 (224 x 224), built from
configs with random weights (benchmarks/realsize.py), each method of IG (50 fixed steps), SHAP
and LIME (our defaults) runs in fp32 and with bf16 autocast, every side warmed up first (one
untimed call; CUDA synchronised before each clock read). On BERT-base the libraries called
directly (benchmarks/speed_direct.py: captum LayerIntegratedGradients, shap Partition over
words, lime text) run the same per-input work in fp32, also warmed up.

bf16 against fp32, per input: top-k overlap (text k = 5 features, images the top 5% of pixels)
and cosine of the score vectors. Tolerance: mean top-k overlap >= 0.8 and mean cosine >= 0.95
(bf16 keeps 8 bits of mantissa: a ranking may swap near-ties, a sign should not flip).
`--dry-run` runs the same code on CPU with tiny inputs and budgets (IG 8 steps, 40 evaluations) (autocast is a no-op on CPU, so the
bf16 rows equal fp32 there): it checks the script, not the GPU. Exits 2 without a GPU unless
--dry-run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "examples")]

import explain  # noqa: E402
from benchlib import machine  # noqa: E402
from realsize import IG, build  # noqa: E402

CASES = (("bert-base", 128), ("gpt2-small", 128), ("resnet-50", 224))
DRY = (("bert-tiny", 12), ("resnet-tiny", 32))
METHODS = ("ig", "shap", "lime")
TOL_TOPK, TOL_COS = 0.8, 0.95


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two score arrays (1.0 when both are zero)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 1.0 if na == nb == 0 else float(a @ b / (na * nb + 1e-30))


def topk_overlap(a: np.ndarray, b: np.ndarray, pixel: bool) -> float:
    """Return |top-k(a) & top-k(b)| / k (text k = 5, images 5% of pixels)."""
    fa, fb = a.ravel(), b.ravel()
    k = max(1, int(0.05 * fa.size)) if pixel else min(5, fa.size)
    return len(set(np.argsort(-fa, kind="stable")[:k]) & set(np.argsort(-fb, kind="stable")[:k])) / k


def timed(device: str, fn: Any) -> tuple[float, Any]:
    """Return (seconds, fn()) with the device synchronised on both sides of the clock."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


DRY_SETTINGS: dict[str, dict[str, Any]] = {"ig": {"n_steps": 8, "adaptive": False}, "shap": {"max_evals": 40}, "lime": {"num_samples": 40}}


def ours(model: str, size: int, device: str, n: int, dry: bool = False) -> list[dict[str, Any]]:
    """fp32 and bf16 rows of our methods on one configuration, with bf16-vs-fp32 agreement."""
    rows = []
    scores: dict[tuple[str, str], list[np.ndarray]] = {}
    for precision in ("fp32", "bf16"):
        adapter, inputs, options = build(model, size, device, autocast="bf16" if precision == "bf16" else None)
        inputs = inputs * n
        for method in METHODS:
            settings: dict[str, Any] = {method: DRY_SETTINGS[method]} if dry else {method: IG} if method == "ig" else {}
            explain.explain(adapter, inputs[:1], methods=[method], **options, **settings)  # warm-up
            secs, res = timed(device, lambda: explain.explain(adapter, inputs, methods=[method], **options, **settings))
            scores[(precision, method)] = [e.scores for e in res]
            row: dict[str, Any] = {"model": model, "size": size, "side": "explain", "method": method, "precision": precision,
                                   "sec_per_input": secs / n, "rows_per_input": float(np.mean([e.rows for e in res]))}
            if precision == "bf16":
                pixel = model.startswith("resnet")
                pairs = list(zip(scores[("fp32", method)], scores[("bf16", method)]))
                row["topk_vs_fp32"] = float(np.mean([topk_overlap(a, b, pixel) for a, b in pairs]))
                row["cosine_vs_fp32"] = float(np.mean([cosine(a, b) for a, b in pairs]))
                row["ok"] = row["topk_vs_fp32"] >= TOL_TOPK and row["cosine_vs_fp32"] >= TOL_COS
            rows.append(row)
            if method == "ig" and model.startswith("bert") and precision == "fp32":
                rows += direct(adapter, inputs, res, device, dry, model)
        del adapter
    return rows


def direct(adapter: Any, texts: list[str], res: Any, device: str, dry: bool = False, name: str = "bert-base") -> list[dict[str, Any]]:
    """captum / shap / lime called directly on the same HF model (fp32, warmed up), same work."""
    import speed_direct as sd
    from speed_ours import work_of

    rows = []
    hf, tok = adapter.model, adapter.tokenizer
    for method, fn in (("ig", sd.ig_one), ("shap", sd.shap_one), ("lime", sd.lime_one)):
        # IG: our final steps; SHAP: 500 evaluations; LIME: our text default (40 per word, 500..5000)
        work: list[dict[str, Any]] = ([work_of(e) for e in res] if method == "ig" else [{"max_evals": 500} for _ in texts]
                                      if method == "shap" else [{"num_samples": min(5000, max(500, 40 * len(t.split())))} for t in texts])
        if dry and method != "ig":
            work = [{"max_evals": 40, "num_samples": 40} for _ in texts]
        fn(hf, tok, texts[0], work[0])  # warm-up
        secs, _ = timed(device, lambda: [fn(hf, tok, t, w) for t, w in zip(texts, work)])
        rows.append({"model": name, "size": len(tok(texts[0])["input_ids"]), "side": {"ig": "captum"}.get(method, method),
                     "method": method, "precision": "fp32", "sec_per_input": secs / len(texts), "work": work[0]})
    for p in hf.parameters():  # speed_direct's IG froze the weights; the adapter owns them again
        p.requires_grad_(True)
    return rows


def main() -> int:
    """Run the check; print the table; write JSON. Exit 1 when a bf16 row is out of tolerance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny inputs: checks the script, not the GPU")
    parser.add_argument("-n", type=int, default=3, help="inputs per configuration (default 3)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine (use --dry-run to check the script on CPU)", file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    n = 1 if args.dry_run else args.n
    rows: list[dict[str, Any]] = []
    for model, size in DRY if args.dry_run else CASES:
        rows += ours(model, size, device, n, args.dry_run)
        print(f"done: {model}", file=sys.stderr, flush=True)
    name = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    print(f"device: {name}; tolerance bf16 vs fp32: mean top-k overlap >= {TOL_TOPK}, mean cosine >= {TOL_COS}")
    print(f"{'model':<12}{'size':>5}{'side':>9}{'method':>7}{'prec':>6}{'s/input':>9}{'rows':>7}{'top-k':>7}{'cos':>7}  ok")
    for r in rows:
        agree = f"{r['topk_vs_fp32']:>7.2f}{r['cosine_vs_fp32']:>7.3f}  {r['ok']}" if "ok" in r else ""
        print(f"{r['model']:<12}{r['size']:>5}{r['side']:>9}{r['method']:>7}{r['precision']:>6}{r['sec_per_input']:>9.3f}"
              f"{r.get('rows_per_input', float('nan')):>7.0f}{agree}")
    doc = {"machine": machine(), "device": name, "dry_run": args.dry_run, "inputs": n,
           "tolerance": {"topk_overlap": TOL_TOPK, "cosine": TOL_COS}, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"written: {args.out}")
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
