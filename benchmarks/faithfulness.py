"""Faithfulness benchmark: every method on the three bundled planted-truth models, scored against chance.

    python benchmarks/faithfulness.py            # 20 held-out inputs per model, full settings
    python benchmarks/faithfulness.py --quick    # 2 inputs per model, cheap settings (CI: well under a minute)

For each model (sentiment-bert, planted-gpt2, digits-cnn) it explains held-out inputs that the
model gets right with every method of the family plus a model-blind baseline (word position,
image edges), then runs explain.metrics.evaluate with the planted cause as the rationale. It
prints one row per method (deletion/insertion AUC, comprehensiveness, sufficiency, each with
its random-order chance level; ground-truth hit rate = pointing game; sanity rho and flag;
seconds) and writes the whole summary to benchmarks/results/faithfulness.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import explain  # noqa: E402
from explain import methods as registry  # noqa: E402
from explain.results.explanation import Results  # noqa: E402
from explain.metrics import baseline_explanation, evaluate, prepare_record  # noqa: E402
from explain.results.results_io import _plain  # noqa: E402  # the results file's own JSON conversion
from planted_data import digit_images, gpt_prompts, sentiment_examples  # noqa: E402

MODELS = ROOT / "examples" / "models"
OUT = ROOT / "benchmarks" / "results" / "faithfulness.json"

# Cheap settings for --quick: fewer IG steps (fixed, where IG can adapt them) and samples;
# full runs use the methods' defaults.
_IG_ADAPTS = "adaptive" in {f for f, *_ in registry.get("ig").describe_settings()}
QUICK_SETTINGS = {
    "ig": {"n_steps": 16, **({"adaptive": False} if _IG_ADAPTS else {})},
    "shap": {"max_evals": 80},
    "lime": {"num_samples": 200},
}
QUICK_METRICS = {"steps": 10, "random_orders": 3, "sanity_steps": 1}
FULL_METRICS = {"steps": 20, "random_orders": 5, "sanity_steps": 3}


def text_inputs(model: explain.Adapter, n: int) -> tuple[list[Any], dict[int, Any], dict[str, Any]]:
    """Return (held-out sentences the model classifies right, planted words, explain options)."""
    rows = [r for r in sentiment_examples(400, seed=123, split="heldout") if r[2] is not None]
    return _correct(model, rows, n, lambda ex, label: model.labels[int(np.argmax(ex.probs))] == label)


def gpt_inputs(model: explain.Adapter, n: int) -> tuple[list[Any], dict[int, Any], dict[str, Any]]:
    """Return (held-out prompts with a cue whose greedy answer is right, cue words, explain options)."""
    rows = [r for r in gpt_prompts(200, seed=123, split="heldout") if r[2] is not None]
    inputs, rationales, _ = _correct(model, rows, n, lambda ex, answer: ex.record.continuation == answer, max_new_tokens=1)
    return inputs, rationales, {"max_new_tokens": 1, "target": "steps"}


def image_inputs(model: explain.Adapter, n: int) -> tuple[list[Any], dict[int, Any], dict[str, Any]]:
    """Return (held-out digit images classified right, boolean masks of the pasted digit, explain options)."""
    rows = []
    for img, label, box in digit_images(120, seed=123, split="heldout"):
        if box is not None:
            mask = np.zeros(img.shape[:2], dtype=bool)
            mask[box[0] : box[2], box[1] : box[3]] = True
            rows.append((img, label, mask))
    return _correct(model, rows, n, lambda ex, label: model.labels[int(np.argmax(ex.probs))] == label)


def _correct(model: explain.Adapter, rows: list[tuple[Any, str, Any]], n: int, right: Callable[[Any, str], bool], **options: Any) -> tuple[list[Any], dict[int, Any], dict[str, Any]]:
    """Keep the first n rows the model answers right: a planted cause only explains a right answer."""
    inputs: list[Any] = []
    rationales: dict[int, Any] = {}
    for raw, label, cause in rows:
        if right(model.prepare(raw, len(inputs), **options), label):
            rationales[len(inputs)] = [cause] if isinstance(cause, str) else cause
            inputs.append(raw)
            if len(inputs) == n:
                break
    return inputs, rationales, {}


CASES = {
    "sentiment-bert": text_inputs,
    "planted-gpt2": gpt_inputs,
    "digits-cnn": image_inputs,
}


def run_model(name: str, n: int, quick: bool, sanity: bool) -> dict[str, Any]:
    """Explain and evaluate one bundled model; return its summary."""
    model = explain.load(MODELS / name, device="cpu")
    inputs, rationales, options = CASES[name](model, n)
    methods = registry.for_model(model)
    settings = {m: s for m, s in QUICK_SETTINGS.items() if m in methods} if quick else {}
    started = time.perf_counter()
    results = explain.explain(model, inputs, methods=methods, **options, **settings)
    explain_seconds = time.perf_counter() - started
    baselines = [
        baseline_explanation(model, prepare_record(model, r), e.target)
        for r in results.inputs
        for e in results.for_input(r.index)[:1]  # one per input: its first target
    ]
    results = Results(list(results) + baselines, model=results.model, inputs=results.inputs, failures=results.failures, run=results.run)
    metrics = ("faithfulness", "agreement", "sanity") if sanity else ("faithfulness", "agreement")
    scored = evaluate(model, results, metrics=metrics, rationales=rationales, **(QUICK_METRICS if quick else FULL_METRICS))
    m = scored.run["metrics"]
    seconds = {meth: round(sum(e.seconds for e in results.by_method(meth)), 3) for meth in dict.fromkeys(e.method for e in results)}
    return {
        "family": model.family,
        "inputs": len(inputs),
        "failures": [f"{f.input}/{f.method}: {f.error}" for f in scored.failures],
        "methods": m["methods"],
        "agreement": m["agreement"].get("pairs", {}),
        "sanity": m["sanity"],
        "settings": {**m["settings"], "methods": settings},
        "errors": m["errors"],
        "explain_seconds": seconds,
        "explain_total_seconds": round(explain_seconds, 3),
        "evaluate_seconds": m["seconds"],
        "evaluate_rows": m["rows"],
    }


COLUMNS = (
    ("deletion_auc", "del AUC"),
    ("insertion_auc", "ins AUC"),
    ("comprehensiveness", "comp"),
    ("sufficiency", "suff"),
)


def table(report: dict[str, Any]) -> str:
    """Return the printed table: one row per model x method, each figure beside its chance level."""
    head = f"{'model':<15} {'method':<10} {'n':>2}  " + "  ".join(f"{t + ' (rand)':>17}" for _, t in COLUMNS)
    head += f"  {'hit':>5} {'P@k':>5} {'sanity ρ':>8} {'flag':>5} {'sec':>7}"
    lines = [head, "-" * len(head)]
    for name, model in report["models"].items():
        for method, s in model["methods"].items():
            def get(key: str) -> float:
                return s.get(key, {}).get("mean", float("nan"))

            cells = "  ".join(f"{get(k):>8.3f} ({get(k + '_random'):>6.3f})" for k, _ in COLUMNS)
            n = int(s.get("deletion_auc", {}).get("n", 0))
            sec = model["explain_seconds"].get(method, float("nan"))
            lines.append(
                f"{name:<15} {method:<10} {n:>2}  {cells}  {get('pointing_game'):>5.2f} {get('rationale_precision'):>5.2f} "
                f"{get('sanity_rank_corr'):>8.2f} {get('sanity_flag'):>5.2f} {sec:>7.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 inputs per model and cheap settings (CI)")
    parser.add_argument("--n", type=int, default=None, help="inputs per model (default 20; --quick: 2)")
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--no-sanity", action="store_true", help="skip the randomisation test (it re-runs every method)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))  # like the trainers: results comparable across machines
    n = args.n or (2 if args.quick else 20)
    started = time.perf_counter()
    report: dict[str, Any] = {"quick": args.quick, "inputs_per_model": n, "models": {}}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in CASES:
            parser.error(f"unknown model {name!r}; choose from {', '.join(CASES)}")
        if not (MODELS / name / "config.json").exists():
            print(f"skipping {name}: examples/models/{name} is missing", file=sys.stderr)
            continue
        report["models"][name] = run_model(name, n, args.quick, not args.no_sanity)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(table(report))
    print(f"\n{report['seconds']} s in all; chance levels in parentheses: deletion AUC and sufficiency lower is better, the others higher.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_plain(report), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
