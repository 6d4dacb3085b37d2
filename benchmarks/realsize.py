"""Real-size models: seconds per input, rows and peak memory per method, one process per configuration.

    python benchmarks/realsize.py [--quick] [--device cpu|cuda] [--out benchmarks/results/realsize.json]

Shapes built from configs with random weights (time does not depend on what weights learnt; no
download): BERT-base (12 layers, hidden 768, 110M parameters, vocabulary 30,522) and GPT-2
small (12 layers, hidden 768, vocabulary 50,257) at 32, 128 and 512 tokens, and ResNet-50
(HF ResNetConfig, bottleneck [3, 4, 6, 3]) at 224 x 224. Tokenizers: the bundled models'
(vocabulary tables padded to the real size). Methods at our defaults, except IG at 50 fixed
steps (a random model's path says nothing about how many a trained one needs). Each method
gets one cheap untimed call first (imports, kernels, numba). Every
configuration runs in its own process: its peak resident memory is that configuration's
alone. CPU cuts (a shared 2-core machine): one input per configuration; every size gets a "forward"
row (seconds per row of a pure batched forward of 8 rows: SHAP and LIME cost about their rows
times this); IG, SHAP and LIME are measured at 32 tokens, IG at 128, forward only at 512, and
ResNet-50 gets Grad-CAM and IG. `--full` measures every method at every size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(ROOT / "examples")]

from benchlib import SHAPES, machine, peak_mb, rss_mb, sentences_of, worker  # noqa: E402

IG = {"n_steps": 50, "adaptive": False}
PLAN: list[tuple[str, int, tuple[str, ...]]] = [
    ("bert-base", 32, ("forward", "ig", "shap", "lime")),
    ("bert-base", 128, ("forward", "ig")),
    ("bert-base", 512, ("forward",)),
    ("gpt2-small", 32, ("forward", "ig", "shap", "lime")),
    ("gpt2-small", 128, ("forward", "ig")),
    ("gpt2-small", 512, ("forward",)),
    ("resnet-50", 224, ("forward", "gradcam", "ig")),
]
FULL: list[tuple[str, int, tuple[str, ...]]] = [  # --full: every method at every size (a GPU, or hours of CPU)
    (m, size, ("forward", "ig", "shap", "lime")) for m, sizes in (("bert-base", (32, 128, 512)), ("gpt2-small", (32, 128, 512))) for size in sizes
] + [("resnet-50", 224, ("forward", "ig", "gradcam", "shap", "lime"))]
QUICK: list[tuple[str, int, tuple[str, ...]]] = [("bert-tiny", 16, ("forward", "ig")), ("resnet-50", 64, ("gradcam",))]


def build(model: str, size: int, device: str, autocast: str | None = None) -> tuple[Any, list[Any], dict[str, Any]]:
    """Return (adapter, one input, options) for a random-weight real-size model."""
    import transformers

    import explain

    torch.manual_seed(0)
    if model in ("bert-base", "bert-tiny"):  # bert-tiny: scripts' dry runs
        cfg = transformers.BertConfig(vocab_size=30522, max_position_embeddings=512, **SHAPES[{"bert-base": "bert-base", "bert-tiny": "tiny"}[model]])
        cfg.num_labels = 2
        tok = transformers.AutoTokenizer.from_pretrained(ROOT / "examples" / "models" / "sentiment-bert")
        hf = transformers.BertForSequenceClassification(cfg).eval()
        return explain.from_model(hf, tok, device=device, autocast=autocast), sentences_of(1, size), {}
    if model == "gpt2-small":
        tok = transformers.AutoTokenizer.from_pretrained(ROOT / "examples" / "models" / "planted-gpt2")
        tok.model_max_length = 1024  # the bundled tokenizer says 64, its planted model's length; GPT-2's is 1024
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50257, n_positions=1024)).eval()
        words = [w for w in tok.get_vocab() if w.isalpha()]
        rng = np.random.default_rng(0)
        ids: list[int] = []
        while len(ids) < size - 1:  # the prompt plus one generated token: `size` tokens in all
            ids += tok(" " + str(rng.choice(words)), add_special_tokens=False)["input_ids"]
        prompt = tok.decode(ids[: size - 1])
        return explain.from_model(hf, tok, device=device, autocast=autocast), [prompt], {"max_new_tokens": 1, "target": 0}
    rcfg = transformers.ResNetConfig(layer_type="bottleneck", depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], embedding_size=64)
    if model == "resnet-tiny":  # scripts' dry runs
        rcfg = transformers.ResNetConfig(layer_type="basic", depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8)
    rcfg.num_labels = 1000
    hf = transformers.ResNetForImageClassification(rcfg).eval()
    prep = {"size": [size, size], "channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return explain.from_model(hf, preprocessing=prep, device=device, autocast=autocast), [image], {}


def forward_cost(adapter: Any, inputs: list[Any], model: str, rows: int = 8) -> dict[str, Any]:
    """Seconds per row of a pure batched forward of `rows` copies of the input (after a warm-up):
    what every perturbation row costs at this size, so SHAP's and LIME's rows can be priced."""
    hf = adapter.model
    with torch.inference_mode():
        if model.startswith("resnet"):
            size = int(np.asarray(inputs[0]).shape[0])
            batch: dict[str, Any] = {"pixel_values": torch.randn(rows, 3, size, size)}
        else:
            ids = torch.tensor([adapter.tokenizer(inputs[0])["input_ids"]] * rows)
            batch = {"input_ids": ids}
        hf(**{k: v[:1] for k, v in batch.items()})  # warm-up
        t0 = time.perf_counter()
        hf(**batch)
        secs = time.perf_counter() - t0
    return {"sec_per_input": secs / rows, "rows_per_input": 1.0, "features": 0, "sec_per_row": secs / rows, "batch": rows}


def one(spec_path: str, out_path: str) -> None:
    """Worker: build one configuration, explain its input once per method, write the figures."""
    import explain

    spec = json.loads(Path(spec_path).read_text())
    adapter, inputs, options = build(spec["model"], spec["size"], spec.get("device", "cpu"))
    built_mb = rss_mb()
    out: dict[str, Any] = {"built_rss_mb": built_mb, "parameters": sum(p.numel() for p in adapter.model.parameters()), "methods": {}}
    small: dict[str, dict[str, Any]] = {"ig": {"n_steps": 4, "adaptive": False}, "shap": {"max_evals": 20}, "lime": {"num_samples": 20}}
    for method in spec["methods"]:
        if method == "forward":
            out["methods"][method] = forward_cost(adapter, inputs, spec["model"])
            continue
        settings: dict[str, Any] = {method: IG} if method == "ig" else {}
        # warm-up, untimed: lazy imports, kernels, numba; a cheap call of the same method
        t0 = time.perf_counter()
        warm: dict[str, Any] = {method: small[method]} if method in small else {}
        explain.explain(adapter, inputs, methods=[method], **options, **warm)
        out.setdefault("warmup_s", {})[method] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = explain.explain(adapter, inputs, methods=[method], **options, **settings)
        secs = time.perf_counter() - t0
        if res.failures:
            out["methods"][method] = {"error": str(res.failures[0])[:300]}
            continue
        out["methods"][method] = {"sec_per_input": secs / len(inputs), "rows_per_input": float(np.mean([e.rows for e in res])),
                                  "features": len(res[0].features) if res[0].features else int(np.prod(res[0].scores.shape))}
    out["peak_mb"] = peak_mb()
    Path(out_path).write_text(json.dumps(out))


def main() -> None:
    """Run every configuration in its own process; print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small configurations: checks the script")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="every method at every size (GPU; hours on a 2-core CPU)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "realsize.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        for model, size, methods in QUICK if args.quick else FULL if args.full else PLAN:
            # one process per method: the peak memory is that method's on that configuration alone
            for method in methods:
                spec = {"model": model, "size": size, "methods": [method], "device": args.device}
                doc = worker(Path(__file__), spec, Path(name), f"{model}-{size}-{method}")
                fig = doc["methods"][method]
                rows.append({"model": model, "size": size, "method": method, "parameters": doc["parameters"], **fig,
                             "peak_mb": doc["peak_mb"], "built_rss_mb": doc["built_rss_mb"], "process_s": doc["process_s"]})
                print(f"done: {model} {size} {method}", file=sys.stderr, flush=True)
                write(args, rows, partial=True)  # a long CPU run keeps what it measured so far
    print(f"{'model':<12}{'size':>6}{'method':>9}{'s/input':>9}{'rows':>7}{'peak MB':>9}{'model MB':>9}{'process s':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<12}{r['size']:>6}{r['method']:>9}  failed: {r['error']}")
            continue
        print(f"{r['model']:<12}{r['size']:>6}{r['method']:>9}{r['sec_per_input']:>9.2f}{r['rows_per_input']:>7.0f}"
              f"{r['peak_mb']:>9.0f}{r['built_rss_mb']:>9.0f}{r['process_s']:>10.1f}")
    print("size: tokens (text) or pixels a side (images); IG at 50 fixed steps, others at our defaults;"
          " peak MB: that process alone (model built + one method); model MB: resident after building the model")
    write(args, rows, partial=False)
    print(f"written: {args.out}")


def write(args: argparse.Namespace, rows: list[dict[str, Any]], partial: bool) -> None:
    """Write the JSON (partial: the run has not finished every configuration yet)."""
    doc = {"machine": machine(), "device": args.device, "quick": args.quick, "partial": partial, "ig_settings": IG,
           "inputs_per_configuration": 1, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].endswith(".json"):
        one(*sys.argv[1:3])
    else:
        main()
