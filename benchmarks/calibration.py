"""Calibration of the self-check thresholds on planted-truth models: does a verdict predict a right answer?

    python benchmarks/calibration.py [--quick] [--out benchmarks/results/calibration.json]
    python benchmarks/calibration.py --render docs/trust.md   # rewrite the table from the JSON only

Each check's threshold (IG completeness 1% of |f(x) - f(baseline)|, SHAP and LIME stability 0.75,
LIME surrogate fit R^2 0.5) is judged by what it is for: an explanation that passes should have
the right top feature, and one that fails should often have the wrong one. Planted truth:
- the bundled sentiment-bert (held-out sentences: the planted sentiment word), planted-gpt2
  (held-out prompts the model answers right: the animal cue word; target the first generated
  token) and digits-cnn (held-out images the model labels right: the most attributed pixel,
  among tied maxima the one nearest their centre, inside the digit's box);
- synthetic models (SHAP and LIME): f(keep) = keep . w + noise(keep), d = 10/20/30 features,
  one planted weight 1.0 and the others in [-0.3, 0.3], and a deterministic noise term of
  amplitude 0, 0.2, 0.5 or 1.0 (sin of a wildly varying projection of the mask), so that budgets
  and noise give both passes and failures; kept only where removing the planted feature alone
  changes the output at least 1.5x as much as removing any other (else the noise, not the
  weight, decides what matters, and the planted weight is no truth).
Budgets run from far too small to the defaults (IG: fixed trapezoid points; SHAP: max_evals;
LIME: num_samples), so each check sees passes and failures. For each check and a sweep of
thresholds around the chosen one: how many explanations pass, the share of those whose top
feature is wrong, how many fail, and the share of those whose top feature is right. LIME's own
in-sample R^2 (`score`, the old surrogate_fit figure) is calibrated beside the held-out one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "examples")]

import explain  # noqa: E402
from benchlib import machine, render_between  # noqa: E402
from explain.adapters.base import Adapter, Example, PerturbationView, contiguous_linkage  # noqa: E402
from explain.execution.runner import Runner  # noqa: E402
from explain.methods import get  # noqa: E402
from explain.results.explanation import InputRecord, ModelInfo, Target  # noqa: E402
from planted_data import digit_images, gpt_prompts, sentiment_examples  # noqa: E402

MODELS = ROOT / "examples" / "models"
OUT = ROOT / "benchmarks" / "results" / "calibration.json"
BUDGETS = {  # far too small .. the defaults (None: the method's own default)
    "ig": [2, 3, 4, 6, 8, 16, 32, 64],
    "shap": [8, 12, 16, 24, 40, 80, 160, None],
    "lime": [10, 16, 24, 40, 80, 160, None],
}
KEY = {"ig": "n_steps", "shap": "max_evals", "lime": "num_samples"}
# check -> (the threshold chosen, the sweep, True when a value at least the threshold passes)
CHECKS: dict[str, tuple[float, list[float], bool]] = {
    "ig completeness": (0.01, [0.002, 0.005, 0.01, 0.02, 0.05, 0.1], False),
    "shap stability": (0.75, [0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0], True),
    "lime stability": (0.75, [0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0], True),
    "lime surrogate_fit (held-out R²)": (0.5, [0.0, 0.25, 0.5, 0.6, 0.75, 0.9], True),
    "lime score (in-sample R², not a check)": (0.5, [0.0, 0.25, 0.5, 0.6, 0.75, 0.9], True),
}
BEGIN, END = "<!-- calibration table (benchmarks/calibration.py --render) -->", "<!-- end calibration table -->"


# ---- planted truth ------------------------------------------------------------------------------
def pointed_pixel(scores: np.ndarray) -> tuple[int, int]:
    """Return the most attributed pixel; among tied maxima (a superpixel), the one nearest their centre."""
    top = np.argwhere(scores >= scores.max() - 1e-6 * max(float(np.ptp(scores)), 1e-12))
    y, x = top[np.argmin(((top - top.mean(0)) ** 2).sum(1))]
    return int(y), int(x)


def right(e: explain.Explanation, truth: Any) -> bool:
    """Return True when the explanation's top feature is the planted truth."""
    if e.granularity == "pixel":
        y, x = pointed_pixel(np.asarray(e.scores))
        return bool(truth[0] <= y < truth[2] and truth[1] <= x < truth[3])
    return e.features[int(np.argmax(e.scores))].strip().lower() == str(truth).lower()


class Synthetic(Adapter):
    """A text-classifier adapter whose output is f(keep-mask) over d features, rows through the runner."""

    family = "text-classifier"

    def __init__(self, d: int, f: Callable[[torch.Tensor], torch.Tensor]) -> None:
        info = ModelInfo(family=self.family, path="<synthetic>", content_hash="sha256:synthetic", parameters=0, labels=("y",))
        super().__init__(torch.nn.Identity(), info, Runner(torch.device("cpu"), batch_size=256))
        self.d, self.f = d, f

    def prepare(self, raw: Any, index: int, **_: Any) -> Example:
        """Return the one input (the features are the mask's positions)."""
        record = InputRecord(index=index, kind="text", text=str(raw), prediction=Target(0, "y", 1.0))
        return Example(index=index, record=record, probs=np.ones(1))

    def gradient_view(self, example: Example, target: Target, **options: Any) -> Any:
        """Not used: the synthetic models serve SHAP and LIME only."""
        raise NotImplementedError

    def perturbation_view(self, example: Example, target: Target, **options: Any) -> PerturbationView:
        """Return the view whose evaluate is f over keep-masks."""
        def evaluate(keep: np.ndarray) -> np.ndarray:
            rows = list(torch.from_numpy(np.asarray(keep, dtype=np.float32).reshape(-1, self.d)))
            return self.runner.map(rows, lambda b: self.f(torch.stack(b))).numpy()

        return PerturbationView(features=tuple(f"w{i}" for i in range(self.d)), evaluate=evaluate,
                                clustering=contiguous_linkage(self.d), expand=lambda v: np.asarray(v, dtype=np.float32),
                                granularity="word", mask="zero", output="logit")


def synthetic_cases(seeds: int) -> list[tuple[Synthetic, str, dict[str, Any]]]:
    """Return (adapter, truth, description) for `seeds` synthetic planted models per size and noise.

    A planted weight is a ground truth only where removing that feature changes the output most
    (DESIGN.md): a model whose noise makes another feature's removal matter as much (leave-one-out
    from the full input, at least 1.5x the next feature's) is drawn again.
    """
    out = []
    for d in (10, 20, 30):
        for amp in (0.0, 0.2, 0.5, 1.0):
            kept, draw = 0, 0
            while kept < seeds and draw < 50 * seeds:
                g = torch.Generator().manual_seed(100_000 * d + 1000 * draw + int(10 * amp))
                draw += 1
                w = (torch.rand(d, generator=g) - 0.5) * 0.6
                planted = int(torch.randint(d, (1,), generator=g))
                w[planted] = 1.0
                wobble = torch.randn(d, generator=g) * 1000

                def f(x: torch.Tensor, w: torch.Tensor = w, wobble: torch.Tensor = wobble, amp: float = amp) -> torch.Tensor:
                    return x @ w + amp * torch.sin(x @ wobble)

                full = torch.ones(1, d)
                loo = (f(full) - f(full - torch.eye(d))).abs()  # the output change when each feature alone is removed
                second = float(loo[torch.arange(d) != planted].max())
                if int(loo.argmax()) != planted or float(loo[planted]) < 1.5 * second:
                    continue
                out.append((Synthetic(d, f), f"w{planted}", {"d": d, "noise": amp, "seed": draw - 1}))
                kept += 1
    return out


def planted_cases(n: int) -> list[dict[str, Any]]:
    """Return the bundled planted-truth models with n held-out inputs each that the model gets right."""
    bert = explain.load(MODELS / "sentiment-bert", device="cpu")
    rows = [(t, label, w) for t, label, w in sentiment_examples(40 * n, seed=7, split="heldout") if w][: 2 * n]
    rows = [r for i, r in enumerate(rows) if bert.prepare(r[0], i).record.prediction.label == r[1]][:n]
    gpt = explain.load(MODELS / "planted-gpt2", device="cpu")
    prompts = [(p, a, c) for p, a, c in gpt_prompts(40 * n, seed=7, split="heldout") if c][: 3 * n]
    prompts = [d for i, d in enumerate(prompts) if gpt.prepare(d[0], i, max_new_tokens=1).record.continuation == d[1]][:n]
    cnn = explain.load(MODELS / "digits-cnn", device="cpu")
    digits = [(img, label, box) for img, label, box in digit_images(10 * n, seed=7, split="heldout") if box is not None][: 2 * n]
    digits = [r for i, r in enumerate(digits) if cnn.prepare(r[0], i).record.prediction.label == r[1]][:n]
    return [
        {"name": "sentiment-bert", "model": bert, "inputs": [t for t, _, _ in rows], "truth": [w for _, _, w in rows], "options": {}},
        {"name": "planted-gpt2", "model": gpt, "inputs": [p for p, _, _ in prompts], "truth": [c for _, _, c in prompts],
         "options": {"target": 0, "max_new_tokens": 1}},
        {"name": "digits-cnn", "model": cnn, "inputs": [i for i, _, _ in digits], "truth": [b for _, _, b in digits], "options": {}},
    ]


# ---- one explanation -> one case -----------------------------------------------------------------
def case(model: str, e: explain.Explanation, budget: Any, is_right: bool) -> dict[str, Any]:
    """Return the figures each check is judged by, for one explanation."""
    checks = {c.name: c for c in e.self_checks}
    row: dict[str, Any] = {"model": model, "method": e.method, "input": e.input, "budget": budget, "right": is_right,
                           "verdict": e.verdict}
    if e.method == "ig":
        row["gap_relative"] = float(e.checks["convergence_delta"]) / max(abs(float(e.checks["output_change"])), 1e-12)
        row["change"] = float(e.checks["output_change"])
        row["gap"] = float(e.checks["convergence_delta"])
    if "stability" in checks:
        row["stability"] = float(checks["stability"].value)
    if e.method == "lime":
        if "heldout_r2" in e.checks:  # absent where it is undefined (an output that never varies)
            row["heldout_r2"] = float(e.checks["heldout_r2"])
        row["score"] = float(e.checks["score"])
    return row


def run(quick: bool) -> list[dict[str, Any]]:
    """Explain every planted case at every budget; return one row per explanation."""
    rows: list[dict[str, Any]] = []
    for c in planted_cases(6 if quick else 24):
        for method, budgets in BUDGETS.items():
            for budget in budgets[::3] if quick else budgets:
                if method == "ig":
                    settings = {"adaptive": False, "method": "trapezoid", "n_steps": budget}
                else:  # fixed budgets: the thresholds are calibrated at each budget (adaptive budgets stop by the checks themselves)
                    settings = {"adaptive": False, **({KEY[method]: budget} if budget else {})}
                res = explain.explain(c["model"], c["inputs"], methods=[method], seed=0, **c["options"], **{method: settings})
                for e in res:
                    rows.append(case(c["name"], e, budget, right(e, c["truth"][e.input])))
                print(f"done: {c['name']} {method} {budget}", file=sys.stderr, flush=True)
    for adapter, truth, about in synthetic_cases(1 if quick else 3):
        for method in ("shap", "lime"):
            for budget in BUDGETS[method][::3] if quick else BUDGETS[method]:
                m = get(method)
                e = m.explain(adapter, adapter.prepare("x", 0), Target(0, "y", 1.0),
                              m.settings({"adaptive": False, **({KEY[method]: budget} if budget else {})}), granularity="word", seed=0)
                rows.append({**case("synthetic", e, budget, right(e, truth)), **about})
    return rows


# ---- the table ---------------------------------------------------------------------------------
def judged(rows: list[dict[str, Any]], check: str) -> list[tuple[float, bool, float]]:
    """Return (value, right, scale) for the explanations this check judges (scale: IG's |change|)."""
    method, name = check.split()[:2]
    key = {"completeness": "gap", "stability": "stability", "surrogate_fit": "heldout_r2", "score": "score"}[name]
    out = []
    for r in rows:
        if r["method"] == method and key in r and r["verdict"] != "no evidence":
            out.append((float(r[key]), bool(r["right"]), abs(float(r.get("change", 1.0)))))
    return out


def passes(check: str, value: float, threshold: float, scale: float) -> bool:
    """Return whether `value` passes `threshold` (IG: the gap within threshold x |change|, or 1e-4)."""
    if check.startswith("ig"):
        return value <= max(threshold * scale, 1e-4)
    return bool(np.isfinite(value) and value >= threshold)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return per check and threshold: passes, wrong tops among them, failures, right tops among them."""
    out: dict[str, Any] = {}
    for check, (chosen, sweep, _) in CHECKS.items():
        cases = judged(rows, check)
        table = []
        for t in sweep:
            ok = [right for v, right, s in cases if passes(check, v, t, s)]
            bad = [right for v, right, s in cases if not passes(check, v, t, s)]
            table.append({"threshold": t, "chosen": t == chosen, "passed": len(ok), "wrong_when_passed": len(ok) - sum(ok),
                          "failed": len(bad), "right_when_failed": sum(bad)})
        out[check] = {"threshold": chosen, "explanations": len(cases), "right": sum(r for _, r, _ in cases), "sweep": table}
    verdicts: dict[str, Any] = {}
    for method in ("ig", "shap", "lime"):
        mine = [r for r in rows if r["method"] == method]
        ok = [r["right"] for r in mine if r["verdict"] == "reliable"]
        bad = [r["right"] for r in mine if r["verdict"] == "unreliable"]
        verdicts[method] = {"reliable": len(ok), "wrong_when_reliable": len(ok) - sum(ok), "unreliable": len(bad),
                            "right_when_unreliable": sum(bad), "no_evidence": sum(r["verdict"] == "no evidence" for r in mine)}
    return {"checks": out, "verdicts": verdicts}


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "0/0"


def render(data: dict[str, Any]) -> str:
    """Return the Markdown tables of the calibration JSON (what docs/trust.md shows between its markers)."""
    s = data["summary"]
    lines = [BEGIN, "", f"`benchmarks/results/calibration.json` ({data['machine']['date']}, {data['explanations']} explanations"
             f"{', quick run' if data.get('quick') else ''}):", "",
             "| verdict | reliable | wrong top word / pixel when reliable | unreliable | right top when unreliable | no evidence |",
             "|---|---|---|---|---|---|"]
    for method, v in s["verdicts"].items():
        lines.append(f"| {method} | {v['reliable']} | {_share(v['wrong_when_reliable'], v['reliable'])} | {v['unreliable']} | "
                     f"{_share(v['right_when_unreliable'], v['unreliable'])} | {v['no_evidence']} |")
    lines += ["", "| check | threshold | passed | wrong top when passed | failed | right top when failed |", "|---|---|---|---|---|---|"]
    for check, c in s["checks"].items():
        for i, row in enumerate(c["sweep"]):
            t = f"{100 * row['threshold']:g}%" if check.startswith("ig") else f"{row['threshold']:g}"
            name = check if i == 0 else ""  # the threshold in use is in bold
            t = f"**{t}**" if row["chosen"] else t
            lines.append(f"| {name} | {t} | {row['passed']} | {_share(row['wrong_when_passed'], row['passed'])} | {row['failed']} | "
                         f"{_share(row['right_when_failed'], row['failed'])} |")
    return "\n".join(lines + ["", END])


def render_into(doc: Path, data: dict[str, Any]) -> None:
    """Replace the block between the calibration markers in `doc` with `render(data)`."""
    render_between(doc, BEGIN, END, render(data))


def main() -> None:
    """Run the calibration (or only render its table) and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few inputs and budgets: checks the script, not the thresholds")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--render", type=Path, help="only rewrite this Markdown file's table from --out")
    args = ap.parse_args()
    if args.render:
        render_into(args.render, json.loads(args.out.read_text()))
        return
    torch.set_num_threads(1)  # tiny models: one thread is fastest and leaves the machine's other core alone
    rows = run(args.quick)
    data = {"machine": machine(), "quick": args.quick, "explanations": len(rows), "budgets": BUDGETS,
            "thresholds": {k: v[0] for k, v in CHECKS.items()}, "summary": summarise(rows), "cases": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, default=float) + "\n")
    print(render(data))


if __name__ == "__main__":
    main()
