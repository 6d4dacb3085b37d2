"""Scaling: how each method's cost grows with input length, number of inputs and generated tokens.

    python benchmarks/scaling.py [--quick] [--out benchmarks/results/scaling.json]

Three tables, each method at its default settings except IG, which runs 50 fixed steps so that
its rows do not depend on how fast a random model's path converges:
- input length (16 / 64 / 256 / 512 tokens) on a BERT of the bundled model's width with 512
  positions, built here with random weights (cost does not depend on what the weights learnt);
- number of inputs (1 / 10 / 100) on the bundled BERT;
- generated tokens (1 / 5 / 20) on the bundled GPT, every token explained plus the whole
  continuation: the prefix cache should make the rows per generated token fall, not grow.
Then IG on a 512-token input with 50 steps, with and without `--max-memory`, each in a fresh
process through the CLI, with the peak resident memory the explanation added.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import explain  # noqa: E402

MODELS = ROOT / "examples" / "models"
METHODS = ("ig", "shap", "lime", "ablation", "attention")
SETTINGS: dict[str, Any] = {"ig": {"n_steps": 50, "adaptive": False}}
CAP = "256MB"


def long_bert(folder: Path) -> Path:
    """Save a random 2-layer BERT classifier with 512 positions and a 1000-word vocabulary."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(995)]
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    cfg = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=512, max_position_embeddings=512, num_labels=2)
    BertForSequenceClassification(cfg).eval().save_pretrained(folder)
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def text_of(tokens: int, seed: int) -> str:
    """A text of `tokens` tokens in all (its words plus [CLS] and [SEP])."""
    rng = np.random.default_rng(seed)
    return " ".join(f"w{i}" for i in rng.integers(0, 995, tokens - 2))


def timed_explain(model: Any, inputs: list[Any], method: str, **kw: Any) -> dict[str, float]:
    t0 = time.perf_counter()
    res = explain.explain(model, inputs, methods=[method], **{method: SETTINGS.get(method, {})}, **kw)
    secs = time.perf_counter() - t0
    if res.failures:
        raise SystemExit(f"{method} failed: {res.failures[0].error}")
    return {"seconds": secs, "rows": float(sum(e.rows for e in res)), "explanations": len(res)}


def by_length(lengths: list[int], folder: Path) -> list[dict[str, Any]]:
    model = explain.load(folder, device="cpu")
    explain.explain(model, [text_of(16, 0)], methods=list(METHODS), shap={"max_evals": 40})  # warm-up (numba)
    rows = []
    for n in lengths:
        for m in METHODS:
            r = timed_explain(model, [text_of(n, n)], m)
            rows.append({"table": "length", "tokens": n, "method": m, **r})
            print(f"length {n:>4} tokens  {m:<10}{r['seconds']:>9.3f} s {r['rows']:>9.0f} rows", flush=True)
    return rows


def by_inputs(counts: list[int]) -> list[dict[str, Any]]:
    from planted_data import sentiment_examples

    model = explain.load(MODELS / "sentiment-bert", device="cpu")
    texts = [t for t, _, _ in sentiment_examples(max(counts), seed=7, split="heldout")]
    explain.explain(model, texts[:1], methods=list(METHODS), shap={"max_evals": 40})
    rows = []
    for n in counts:
        for m in METHODS:
            r = timed_explain(model, texts[:n], m)
            rows.append({"table": "inputs", "inputs": n, "method": m, **r, "seconds_per_input": r["seconds"] / n})
            print(f"inputs {n:>4}         {m:<10}{r['seconds']:>9.3f} s {r['rows']:>9.0f} rows  {r['seconds'] / n:.4f} s/input", flush=True)
    return rows


def by_generated(counts: list[int]) -> list[dict[str, Any]]:
    """The bundled GPT stops after its answer, so N tokens are a forced continuation of N
    filler tokens (explained exactly like generated ones: one target per token)."""
    from planted_data import gpt_prompts

    model = explain.load(MODELS / "planted-gpt2", device="cpu")
    prompts = [p for p, _, c in gpt_prompts(50, seed=7, split="heldout") if c]
    prompt, filler = prompts[0], " ".join(" ".join(prompts[1:]).split())
    ids = model.tokenizer(filler, add_special_tokens=False)["input_ids"]
    explain.explain(model, [prompt], methods=list(METHODS), max_new_tokens=1, shap={"max_evals": 40})
    rows = []
    for n in counts:
        continuation = model.tokenizer.decode(ids[:n])
        for m in METHODS:
            r = timed_explain(model, [prompt], m, continuation=continuation, target="all")
            rows.append({"table": "generated", "generated": n, "method": m, **r, "rows_per_token": r["rows"] / n})
            print(f"generated {n:>3}       {m:<10}{r['seconds']:>9.3f} s {r['rows']:>9.0f} rows  {r['rows'] / n:.0f} rows/token", flush=True)
    return rows


def capped_ig(folder: Path, tokens: int) -> list[dict[str, Any]]:
    """IG, 50 steps, on one long input, in a fresh CLI process each: peak memory with and without a cap."""
    rows = []
    for cap in (None, CAP):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, __file__, "--child", str(folder), str(tokens), out] + ([cap] if cap else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append({"table": "memory", "tokens": tokens, "method": "ig", "cap": cap, **r})
        print(f"IG {tokens} tokens, 50 steps, --max-memory {cap or 'none':<6}: {r['seconds']:.2f} s, peak +{r['peak_mb']:.0f} MB, "
              f"{r['chunk'] or 50} rows per chunk", flush=True)
    return rows


def _child(folder: str, tokens: int, out: str, cap: str | None) -> None:
    """Run the CLI in this process and print the peak memory the run added (Linux: VmHWM)."""
    from explain.cli.main import main as cli

    text = text_of(tokens, 1)
    import explain as ex

    import captum.attr  # noqa: F401  # the run's imports, outside the measured peak
    import lime.lime_text  # noqa: F401
    import shap  # noqa: F401

    ex.load(folder, device="cpu")
    base = _status("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    args = ["run", folder, "--text", text, "--methods", "ig", "--ig-steps", "50", "--set", "ig.adaptive=false",
            "--out", out, "--no-report", "--quiet"] + (["--max-memory", cap] if cap else [])
    rc = cli(args)
    secs = time.perf_counter() - t0
    res = ex.open_results(Path(out) / "results.json")
    print(json.dumps({"rc": rc, "seconds": secs, "peak_mb": (_status("VmHWM") - base) / 1024,
                      "chunk": res[0].settings.get("internal_batch_size"), "delta_relative": res[0].checks["delta_relative"]}))


def _status(key: str) -> float:
    """Return a /proc/self/status figure in kB (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def main() -> None:
    """Run the three tables and the memory check; print them and write JSON."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the scaling")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling.json"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("EXPLAIN_BENCH_THREADS", "1")))
    lengths, counts, generated, long = ([16, 64], [1, 3], [1, 3], 64) if args.quick else ([16, 64, 256, 512], [1, 10, 100], [1, 5, 20], 512)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = long_bert(Path(tmp) / "bert-512")
        rows += by_length(lengths, folder)
        rows += by_inputs(counts)
        rows += by_generated(generated)
        rows += capped_ig(folder, long)
    doc = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads()},
        "quick": args.quick,
        "settings": {"ig": SETTINGS["ig"], "others": "defaults", "cap": CAP},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
