"""Speed, side by side: explain vs captum / shap / lime called directly, on the bundled models.

    python benchmarks/speed.py [--quick] [--out benchmarks/results/speed.json]

Each row explains the same held-out inputs twice, with our toolkit and with the library called
as a careful user would (batched predict function, inference mode), at equal settings and at
each side's defaults. Printed per row: seconds per input, model rows evaluated per input, time
divided by a pure batched forward (or forward+backward for IG) of the same number of rows, and
the planted-truth hit rate (top feature = the planted word / most attributed pixel inside the
digit), so speed is never bought with wrong answers. One process, one machine: ratios are
comparable, absolute seconds depend on the machine (recorded in the JSON).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import explain  # noqa: E402
from planted_data import digit_images, gpt_prompts, sentiment_examples  # noqa: E402

MODELS = ROOT / "examples" / "models"


@dataclass
class Row:
    """One measured configuration."""

    family: str
    method: str
    side: str  # "explain" or the library called directly
    settings: str  # "equal" or "defaults"
    sec_per_input: float
    rows_per_input: float
    time_over_forward: float
    hit_rate: float
    peak_rss_mb: float


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class Counter:
    """Counts the rows a direct-library predict function evaluates."""

    def __init__(self) -> None:
        self.rows = 0


# ---------------------------------------------------------------------------------------------
# text classifier
# ---------------------------------------------------------------------------------------------
def text_rows(n: int) -> list[tuple[str, str, str]]:
    """Held-out sentences with a planted word: (text, label, word)."""
    return [r for r in sentiment_examples(20 * n, seed=99, split="heldout") if r[2]][:n]  # type: ignore[misc]


def bench_text(n: int, out: list[Row]) -> None:
    """BERT: IG vs captum, SHAP vs shap, LIME vs lime."""
    import shap
    from captum.attr import LayerIntegratedGradients
    from lime.lime_text import LimeTextExplainer

    model = explain.load(MODELS / "sentiment-bert", device="cpu")
    tok, hf = model.tokenizer, model.model
    data = text_rows(n)
    texts = [t for t, _, _ in data]
    words = [w for _, _, w in data]
    targets = [int(np.argmax(model.predict([tok(t)["input_ids"]])[0])) for t in texts]
    counter = Counter()

    @torch.inference_mode()
    def predict(strings: Any) -> np.ndarray:
        strings = [str(s) for s in strings]
        counter.rows += len(strings)
        outs = []
        for i in range(0, len(strings), 64):
            enc = tok(strings[i : i + 64], return_tensors="pt", padding=True, truncation=True)
            outs.append(torch.softmax(hf(**enc).logits, -1).numpy())
        return np.concatenate(outs)

    fwd = _forward_cost(model, texts)

    def ours(method: str, settings: dict[str, Any]) -> tuple[float, float, float]:
        secs, res = _timed(lambda: explain.explain(model, texts, methods=[method], **{method: settings}))
        hits = np.mean([e.features[int(np.argmax(e.scores))] == words[e.input] for e in res])
        return secs / n, float(np.mean([e.rows for e in res])), float(hits)

    def add(method: str, side: str, setting: str, sec: float, rows: float, hit: float, grad: bool = False) -> None:
        per_row = fwd["grad" if grad else "fwd"]
        out.append(Row("text-classifier", method, side, setting, sec, rows, sec / max(rows * per_row, 1e-12), hit, _peak_mb()))

    # integrated gradients: equal settings are captum's defaults (50 steps, Gauss-Legendre);
    # our default grows the steps until completeness holds, which a confident model needs
    ig_ours = ours("ig", {"n_steps": 50, "adaptive": False})
    add("ig", "explain", "defaults (adaptive)", *ours("ig", {}), grad=True)

    def captum_ig() -> float:
        # equal work: the prediction picks the target, and the convergence delta is reported
        hits = 0
        for text, word in zip(texts, words):
            ids = tok(text, return_tensors="pt")["input_ids"]
            with torch.inference_mode():
                target = int(hf(input_ids=ids).logits.argmax())
            special = torch.tensor(tok.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)).bool()
            base = torch.where(special, ids, torch.full_like(ids, tok.pad_token_id))
            lig = LayerIntegratedGradients(lambda x: torch.softmax(hf(input_ids=x).logits, -1)[:, target], hf.get_input_embeddings())
            attr, _ = lig.attribute(ids, baselines=base, n_steps=50, internal_batch_size=64, return_convergence_delta=True)
            attr = attr.sum(-1)[0]
            top = int(attr.argmax())
            hits += tok.convert_ids_to_tokens(int(ids[0, top])).lstrip("#") in word
        return hits / n

    # both sides are a few milliseconds per input: alternate them three times, keep each best
    secs, hit = _timed(captum_ig)
    for _ in range(2):
        again = ours("ig", {"n_steps": 50, "adaptive": False})
        ig_ours = min(ig_ours, again)
        secs = min(secs, _timed(captum_ig)[0])
    add("ig", "explain", "equal", *ig_ours, grad=True)
    add("ig", "captum", "equal", secs / n, 52, hit, grad=True)

    # SHAP: equal settings (500 evaluations, batch 64) and each side's defaults. shap compiles
    # its partition code with numba on the first call of a process (seconds): both sides get
    # one untimed warm-up call, and the one-off cost is recorded apart.
    compile_s, _ = _timed(lambda: explain.explain(model, texts[:1], methods=["shap"], shap={"max_evals": 50}))
    out.append(Row("text-classifier", "shap", "explain", "first call (numba)", compile_s, 50, 0.0, 1.0, _peak_mb()))
    add("shap", "explain", "equal", *ours("shap", {"max_evals": 500}))
    add("shap", "explain", "defaults", *ours("shap", {}))
    for setting, kwargs in (("equal", {"max_evals": 500, "batch_size": 64}), ("defaults", {})):
        explainer = shap.Explainer(predict, shap.maskers.Text(tok))
        explainer(texts[:1], silent=True)  # the numba compilation is a one-off per process: not timed
        counter.rows = 0
        secs, values = _timed(lambda: explainer(texts, silent=True, **kwargs))
        hits = 0
        for i in range(n):
            v = values[i].values[:, targets[i]]
            hits += str(values[i].data[int(np.argmax(v))]).strip().lstrip("#") in words[i]
        add("shap", "shap", setting, secs / n, counter.rows / n, hits / n)

    # LIME: equal settings (5000 samples) and defaults (ours scales with the input's length)
    add("lime", "explain", "equal", *ours("lime", {"num_samples": 5000}))
    add("lime", "explain", "defaults", *ours("lime", {}))
    counter.rows = 0

    def lime_direct() -> float:
        hits = 0
        for text, word, target in zip(texts, words, targets):
            exp = LimeTextExplainer(random_state=0).explain_instance(text, predict, labels=(target,), num_features=40, num_samples=5000)
            hits += exp.as_list(label=target)[0][0] == word
        return hits / n

    secs, hit = _timed(lime_direct)
    add("lime", "lime", "equal", secs / n, counter.rows / n, hit)
    add("lime", "lime", "defaults", secs / n, counter.rows / n, hit)


def _forward_cost(model: Any, texts: list[str]) -> dict[str, float]:
    """Seconds per row of a pure batched forward, and of forward+backward, at these lengths."""
    ids = [model.tokenizer(t)["input_ids"] for t in texts]
    rows = [ids[i % len(ids)] for i in range(512)]
    model.logits_of(rows[:64])  # warm-up
    with torch.inference_mode():
        t, _ = _timed(lambda: [model.logits_of(rows[i : i + 64]) for i in range(0, 512, 64)])
    emb = model.model.get_input_embeddings()
    batch = torch.tensor([r for r in rows[:64] if len(r) == len(rows[0])] or [rows[0]])
    x = emb(batch).detach().requires_grad_(True)
    model.model(inputs_embeds=x).logits[:, 0].sum().backward()  # warm-up
    tg, _ = _timed(lambda: model.model(inputs_embeds=x).logits[:, 0].sum().backward())
    return {"fwd": t / 512, "grad": tg / len(batch)}


# ---------------------------------------------------------------------------------------------
# image classifier
# ---------------------------------------------------------------------------------------------
def bench_images(n: int, out: list[Row]) -> None:
    """Digits CNN: IG vs captum, SHAP vs shap (blur masker), LIME vs lime_image."""
    import shap
    from captum.attr import IntegratedGradients
    from lime.lime_image import LimeImageExplainer

    model = explain.load(MODELS / "digits-cnn", device="cpu")
    cnn = model.model
    data = [r for r in digit_images(6 * n, seed=99, split="heldout") if r[2] is not None][:n]
    images = [img for img, _, _ in data]
    boxes = [box for _, _, box in data]
    counter = Counter()

    def to_input(batch: np.ndarray) -> torch.Tensor:  # (B, 32, 32[, C]) uint8/float -> normalised
        x = torch.as_tensor(np.asarray(batch, dtype=np.float32))
        if x.ndim == 4:
            x = x.mean(-1)
        x = x / 255.0 if x.max() > 1.5 else x
        return ((x - 0.5) / 0.5).unsqueeze(1)

    @torch.inference_mode()
    def predict(batch: np.ndarray) -> np.ndarray:
        counter.rows += len(batch)
        return torch.softmax(cnn(to_input(batch)), -1).numpy()

    targets = [int(np.argmax(predict(img[None]))) for img in images]
    x = to_input(np.stack(images))
    with torch.inference_mode():
        cnn(x.repeat(64 // len(x) + 1, 1, 1, 1)[:64])  # warm-up: oneDNN builds its kernels on the first call
        t, _ = _timed(lambda: [cnn(x.repeat(64 // len(x) + 1, 1, 1, 1)[:64]) for _ in range(8)])
    fwd = t / 512
    xg = x.repeat(64 // len(x) + 1, 1, 1, 1)[:64].requires_grad_(True)
    cnn(xg)[:, 0].sum().backward()  # warm-up
    tg, _ = _timed(lambda: cnn(xg)[:, 0].sum().backward())
    grad = tg / 64

    def inside(score: np.ndarray, box: tuple[int, int, int, int]) -> bool:
        y, xx = np.unravel_index(int(np.argmax(score)), score.shape)
        return box[0] <= y < box[2] and box[1] <= xx < box[3]

    def add(method: str, side: str, setting: str, sec: float, rows: float, hit: float, g: bool = False) -> None:
        per = grad if g else fwd
        out.append(Row("image-classifier", method, side, setting, sec, rows, sec / max(rows * per, 1e-12), hit, _peak_mb()))

    def ours(method: str, settings: dict[str, Any]) -> tuple[float, float, float]:
        secs, res = _timed(lambda: explain.explain(model, images, methods=[method], **{method: settings}))
        return secs / n, float(np.mean([e.rows for e in res])), float(np.mean([inside(e.scores, boxes[e.input]) for e in res]))

    ig_ours = ours("ig", {"n_steps": 50, "adaptive": False})
    add("ig", "explain", "defaults (adaptive)", *ours("ig", {}), g=True)

    def captum_ig() -> float:
        hits = 0
        for img, box in zip(images, boxes):
            z = torch.as_tensor(img, dtype=torch.float32)[None, None] / 255.0
            with torch.inference_mode():
                target = int(cnn((z - 0.5) / 0.5).argmax())
            ig = IntegratedGradients(lambda z: torch.softmax(cnn((z - 0.5) / 0.5), -1)[:, target])
            attr, _ = ig.attribute(z, baselines=torch.zeros_like(z), n_steps=50, internal_batch_size=64, return_convergence_delta=True)
            hits += inside(attr[0, 0].detach().numpy(), box)
        return hits / n

    secs, hit = _timed(captum_ig)
    for _ in range(2):
        ig_ours = min(ig_ours, ours("ig", {"n_steps": 50, "adaptive": False}))
        secs = min(secs, _timed(captum_ig)[0])
    add("ig", "explain", "equal", *ig_ours, g=True)
    add("ig", "captum", "equal", secs / n, 52, hit, g=True)

    add("shap", "explain", "equal", *ours("shap", {"max_evals": 500}))
    masker = shap.maskers.Image("blur(8,8)", images[0].shape + (1,))
    explainer = shap.Explainer(lambda b: predict(b[..., 0]), masker)
    explainer(np.stack(images[:1])[..., None], max_evals=50, silent=True)  # numba warm-up, untimed
    counter.rows = 0

    def shap_direct() -> float:
        hits = 0
        for img, box, target in zip(images, boxes, targets):
            v = explainer(img[None, ..., None].astype(np.float32), max_evals=500, batch_size=64, outputs=[target], silent=True)
            hits += inside(v.values[0, ..., 0, 0], box)
        return hits / n

    secs, hit = _timed(shap_direct)
    add("shap", "shap", "equal", secs / n, counter.rows / n, hit)

    add("lime", "explain", "equal", *ours("lime", {"num_samples": 1000}))
    counter.rows = 0

    def lime_direct() -> float:
        hits = 0
        for img, box, target in zip(images, boxes, targets):
            exp = LimeImageExplainer(random_state=0).explain_instance(
                np.stack([img] * 3, -1), predict, labels=(target,), top_labels=None, num_samples=1000, batch_size=64
            )
            weights = dict(exp.local_exp[target])
            score = np.vectorize(lambda s: weights.get(s, 0.0))(exp.segments)
            hits += inside(score, box)
        return hits / n

    secs, hit = _timed(lime_direct)
    add("lime", "lime", "equal (default quickshift)", secs / n, counter.rows / n, hit)

    # each side's defaults: ours as they come; lime's explain_instance as it comes (1000
    # samples, batch 10, top 5 labels) and shap's DeepExplainer (the usual choice for a torch
    # CNN) with 100 background images, all classes
    add("shap", "explain", "defaults", *ours("shap", {}))
    add("lime", "explain", "defaults", *ours("lime", {}))
    counter.rows = 0

    def lime_defaults() -> float:
        hits = 0
        for img, box, target in zip(images, boxes, targets):
            exp = LimeImageExplainer(random_state=0).explain_instance(np.stack([img] * 3, -1), predict)
            weights = dict(exp.local_exp.get(target, []))
            score = np.vectorize(lambda s: weights.get(s, 0.0))(exp.segments)
            hits += inside(score, box)
        return hits / n

    secs, hit = _timed(lime_defaults)
    add("lime", "lime", "defaults", secs / n, counter.rows / n, hit)
    background = to_input(np.stack([img for img, _, _ in digit_images(100, seed=98, split="heldout")]))

    class Counted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cnn = cnn

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            counter.rows += len(z)
            return torch.softmax(self.cnn(z), -1)

    def deep_defaults() -> float:
        hits = 0
        deep = shap.DeepExplainer(Counted().eval(), background)
        for img, box, target in zip(images, boxes, targets):
            values = deep.shap_values(to_input(img[None]), check_additivity=False)
            hits += inside(np.asarray(values)[0, 0, :, :, target], box)
        return hits / n

    counter.rows = 0
    secs, hit = _timed(deep_defaults)
    add("shap", "shap", "defaults (DeepExplainer)", secs / n, counter.rows / n, hit)


# ---------------------------------------------------------------------------------------------
# causal LM (GPT)
# ---------------------------------------------------------------------------------------------
def bench_gpt(n: int, out: list[Row]) -> None:
    """GPT-2: IG vs captum's LLMGradientAttribution, ablation / SHAP / LIME vs LLMAttribution.

    captum's LLM classes at the settings that work on transformers 5.x: the whole target in
    one forward (forward_in_tokens=False) and one perturbation per model call (their forward
    takes one perturbed prompt). The target is the first generated token, decided by the cue.
    """
    from captum.attr import FeatureAblation, LayerIntegratedGradients, Lime, ShapleyValueSampling
    from captum.attr import LLMAttribution, LLMGradientAttribution, TextTokenInput

    model = explain.load(MODELS / "planted-gpt2", device="cpu")
    tok, hf = model.tokenizer, model.model
    data = [(p, a, c) for p, a, c in gpt_prompts(30 * n, seed=99, split="heldout") if c][: 3 * n]
    data = [d for i, d in enumerate(data) if model.prepare(d[0], i, max_new_tokens=1).record.continuation == d[1]][:n]
    prompts, cues, answers = [p for p, _, _ in data], [c for _, _, c in data], [a for _, a, _ in data]
    calls = Counter()
    original = hf.forward

    def counting(*a: Any, **k: Any) -> Any:
        ids = k.get("input_ids", a[0] if a else None)
        calls.rows += int(ids.shape[0]) if ids is not None else int(k["inputs_embeds"].shape[0])
        return original(*a, **k)

    ids_of = [tok(p)["input_ids"] for p in prompts]
    rows = [ids_of[i % n] + tok(answers[i % n], add_special_tokens=False)["input_ids"] for i in range(256)]
    with torch.inference_mode():
        hf(input_ids=torch.tensor([rows[0]] * 32))  # warm-up
        t, _ = _timed(lambda: [hf(input_ids=torch.tensor([r for r in rows[i : i + 32] if len(r) == len(rows[i])])) for i in range(0, 256, 32)])
    fwd_rows = sum(len([r for r in rows[i : i + 32] if len(r) == len(rows[i])]) for i in range(0, 256, 32))
    per_row = t / fwd_rows
    emb = hf.get_input_embeddings()
    x = emb(torch.tensor([rows[0]] * 32)).detach().requires_grad_(True)
    tg, _ = _timed(lambda: hf(inputs_embeds=x).logits[:, -1, 0].sum().backward())
    per_grad = tg / 32

    def add(method: str, side: str, setting: str, sec: float, rws: float, hit: float, g: bool = False) -> None:
        per = per_grad if g else per_row
        out.append(Row("causal-lm", method, side, setting, sec, rws, sec / max(rws * per, 1e-12), hit, _peak_mb()))

    def ours(method: str, settings: dict[str, Any]) -> tuple[float, float, float]:
        secs, res = _timed(lambda: explain.explain(model, prompts, methods=[method], target=0, max_new_tokens=1, **{method: settings}))
        hits = np.mean([e.features[int(np.argmax(e.scores))] == cues[e.input] for e in res])
        return secs / n, float(np.mean([e.rows for e in res])), float(hits)

    def cue_tokens(prompt: str, cue: str) -> set[str]:
        return {t.lstrip("\u0120\u2581") for t in tok.convert_ids_to_tokens(tok(" " + cue, add_special_tokens=False)["input_ids"])}

    def direct(make: Callable[[], Any], **kwargs: Any) -> tuple[float, float, float]:
        hf.forward = counting  # type: ignore[method-assign]
        calls.rows = 0
        hits = 0
        t0 = time.perf_counter()
        try:
            for prompt, cue, answer in zip(prompts, cues, answers):
                inp = TextTokenInput(prompt, tok, skip_tokens=list(tok.all_special_ids))
                res = make().attribute(inp, target=answer, **kwargs)
                attr = res.seq_attr.detach().float().cpu().numpy()
                top = res.input_tokens[int(np.argmax(attr))].lstrip("\u0120\u2581")
                hits += top in cue_tokens(prompt, cue)
        finally:
            hf.forward = original  # type: ignore[method-assign]
        return (time.perf_counter() - t0) / n, calls.rows / n, hits / n

    explain.explain(model, prompts[:1], methods=["ig", "shap", "lime"], target=0, max_new_tokens=1, shap={"max_evals": 40})  # warm-up
    add("ig", "explain", "equal", *ours("ig", {"n_steps": 50, "adaptive": False}), g=True)
    add("ig", "explain", "defaults (adaptive)", *ours("ig", {}), g=True)
    add("ig", "captum", "equal", *direct(lambda: LLMGradientAttribution(LayerIntegratedGradients(hf, emb), tok), n_steps=50), g=True)
    add("ablation", "explain", "equal", *ours("ablation", {}))
    fa = {"forward_in_tokens": False, "use_cached_outputs": False}
    add("ablation", "captum", "equal", *direct(lambda: LLMAttribution(FeatureAblation(hf), tok), **fa))
    shap_secs, shap_rows, shap_hit = ours("shap", {"max_evals": 200})
    add("shap", "explain", "equal", shap_secs, shap_rows, shap_hit)
    d = float(np.mean([len(p.split()) for p in prompts]))
    add("shap", "captum", "equal (Shapley sampling)", *direct(lambda: LLMAttribution(ShapleyValueSampling(hf), tok), n_samples=max(1, int(200 // (d + 1))), **fa))
    add("lime", "explain", "equal", *ours("lime", {"num_samples": 200}))
    add("lime", "captum", "equal", *direct(lambda: LLMAttribution(Lime(hf), tok), n_samples=200, **fa))


# ---------------------------------------------------------------------------------------------
def main() -> None:
    """Run the benchmark, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few inputs: checks the script, not the speed")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    n = 3 if args.quick else 20
    rows: list[Row] = []
    bench_text(n, rows)
    bench_images(n, rows)
    bench_gpt(n, rows)
    header = f"{'family':<17}{'method':<7}{'side':<9}{'settings':<27}{'s/input':>9}{'rows/in':>9}{'t/fwd':>7}{'hit':>6}"
    print(header)
    for r in rows:
        print(f"{r.family:<17}{r.method:<7}{r.side:<9}{r.settings:<27}{r.sec_per_input:>9.3f}{r.rows_per_input:>9.0f}{r.time_over_forward:>7.2f}{r.hit_rate:>6.2f}")
    doc = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": torch.get_num_threads()},
        "inputs_per_family": n,
        "quick": args.quick,
        "rows": [asdict(r) for r in rows],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
