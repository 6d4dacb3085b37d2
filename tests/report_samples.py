"""Hand-made Results from random arrays (no model): for report tests, the size benchmark and previews.

Moved here from explain/reports/samples.py (test data does not ship in the package).

Like shap's plot tests, these build every field a real run fills -- checks, extras, failures --
so the report can be exercised for each family without loading a checkpoint. `hostile=True`
puts an HTML-injection string into every user-controlled text: inputs, labels, tokens, paths,
file names, settings and error messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from explain.reports.inline import png_base64

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Results

HOSTILE = "<img src=x onerror=alert(1)>"
WORDS = "the a movie film was is plot acting story and with of it this that very some great awful good bad dull".split()
VERSIONS = {"explain": "0.1.0", "python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6", "plotly": "7.1.0"}


def _run(methods: Sequence[str], granularity: str, exps: Sequence[Explanation], baseline: str = "mask") -> dict:
    return {
        "baseline": baseline,
        "created": "2026-01-02T03:04:05+00:00",
        "methods": list(methods),
        "settings": {m: {} for m in methods},
        "seed": 0,
        "granularity": granularity,
        "target": None,
        "device": "cpu",
        "versions": dict(VERSIONS),
        "seconds": round(sum(e.seconds for e in exps), 3),
        "rows": int(sum(e.rows for e in exps)),
        "cached_rows": int(sum(e.cached_rows for e in exps)),
    }


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _checks(method: str, rng: np.random.Generator, scores: np.ndarray, bad: bool) -> dict[str, float]:
    """Return the method's own figures as the methods write them (IG delta and output change, SHAP base value, LIME R²)."""
    total = float(np.sum(scores))
    if method == "ig":
        rel = 0.2 if bad else float(rng.uniform(0.0005, 0.009))
        change = total or 1.0
        return {"convergence_delta": abs(rel * change), "delta_relative": rel, "output_change": change}
    if method == "shap":
        # efficiency_gap is shap's accounting (0 by construction), kept as a figure: it is never a check
        stable = 0.5 if bad else 1.0
        return {"base_value": 0.3, "output": 0.3 + total, "efficiency_gap": 0.0, "stability": stable}
    if method == "lime":
        return {"score": float(rng.uniform(0.2, 0.9)), "intercept": 0.1, "local_prediction": 0.8,
                "stability": float(rng.choice([0.8333333, 1.0]))}
    return {}


def _overlap(what: str, value: float, k: int, threshold: float = 0.75) -> tuple[bool, str]:
    """Return (passed, sentence) in the words of explain/methods/stability.py."""
    passed = value >= threshold
    sentence = (f"{what} {'agree' if passed else 'disagree'} on the top {k} feature{'s' if k > 1 else ''} (average overlap "
                f"{value:.2f}, {'at least' if passed else 'below'} {threshold:.2f})")
    return passed, sentence + ("" if passed else ": the estimate has not settled; raise the budget")


def _self_checks(method: str, checks: dict[str, float], rng: np.random.Generator, bad: bool) -> tuple:
    """Return the verdicts the methods write, in their words: IG completeness, SHAP stability, LIME surrogate fit and stability."""
    from explain.results.explanation import SelfCheck

    if method == "ig" and "delta_relative" in checks:
        gap, change = float(checks["convergence_delta"]), float(checks["output_change"])
        tol = max(0.01 * abs(change), 1e-4)  # explain/methods/ig.py: 1% of the output change, at least 1e-4
        share = 100 * gap / abs(change)
        off = f"{share:.2g}% of f(x) - f(baseline) = {change:.3g}" if share < 10 else f"{share:.0f}% of f(x) - f(baseline) = {change:.3g}"
        floor = f" (under the floor of {1e-4:g}: the output change is tiny)" if tol > 0.01 * abs(change) else ""
        if gap <= tol:
            return (SelfCheck("completeness", True, gap, tol, f"IG is complete: the scores add up to the output change within {off}{floor}."),)
        return (SelfCheck("completeness", False, gap, tol, f"IG is NOT complete: the scores add up to {change - gap:.3g}, off by {off}, "
                          "after 50 steps; the scores are unreliable."),)
    if method == "shap" and "stability" in checks:
        v = float(checks["stability"])
        if v == 1.0 and not bad:
            return (SelfCheck("stability", True, 1.0, 0.75, "exact: every cluster of the 12 features was expanded within 500 evaluations"),)
        ok, text = _overlap("the values at 500 and at 250 evaluations", v, 1)
        return (SelfCheck("stability", ok, v, 0.75, text),)
    if method == "lime" and "score" in checks:
        r2 = float(checks["score"])
        fit = r2 >= 0.5
        text = f"the linear surrogate explains {r2:.2f} of the output's variance on its neighbours (R^2 {'at least' if fit else 'below'} 0.50)"
        if not fit:
            text += ": the model is not close to linear in these features here, so the weights are a poor summary"
        st = float(checks.get("stability", 1.0))
        ok, stable = _overlap("fits on two independent halves of the 1000 neighbours", st, 3)
        return (SelfCheck("surrogate_fit", fit, r2, 0.5, text), SelfCheck("stability", ok, st, 0.75, stable))
    return ()


def _attention_extras(rng: np.random.Generator, words: Sequence[str], layers: int, heads: int) -> dict:
    tokens = ["[CLS]"] + [t for w in words for t in ([w[:3], "##" + w[3:]] if len(w) > 5 else [w])] + ["[SEP]"]
    t, n = len(tokens), len(words)
    return {
        "attention": _softmax(rng.normal(size=(layers, heads, n, n)) * 2).astype(np.float32),
        "rollout": _softmax(rng.normal(size=(n, n))).astype(np.float32),
        "token_attention": _softmax(rng.normal(size=(layers, heads, t, t)) * 2).astype(np.float32),
        "token_rollout": _softmax(rng.normal(size=(t, t))).astype(np.float32),
        "tokens": tokens,
        "query": 0,
        "heads": "all",
    }


def text_results(
    n_inputs: int = 3,
    n_words: int = 12,
    methods: Sequence[str] = ("ig", "shap", "lime", "attention"),
    *,
    layers: int = 2,
    heads: int = 4,
    targets: int = 1,
    hostile: bool = True,
    seed: int = 0,
    no_evidence: Sequence[int] = (2,),
    labels_in_run: bool = False,
) -> Results:
    """Return text-classifier Results: `targets` labels per input, attention extras, flags and failures.

    Inputs in `no_evidence` barely move the output (IG: f(x) - f(baseline) ~ 3e-6, every score
    ~1e-6) and their methods measured a noise floor above that (IG's completeness gap, SHAP's and
    LIME's `noise_floor`): the report must call it weak evidence instead of painting the noise. True labels (InputRecord.label)
    make input 1 wrong and the others right; InputRecord.probabilities holds every class's
    probability. `labels_in_run` puts both in run["labels"] / run["probabilities"] instead, as
    files written before InputRecord had them did.

    Removal: the run's is `mask` (IG and attention too), SHAP was told `drop`, and LIME records it
    under the old settings name `mask` (the hostile string when `hostile`).
    """
    from explain.results.explanation import Explanation, Failure, InputRecord, ModelInfo, Results, Target

    rng = np.random.default_rng(seed)
    labels = ("negative", "neutral", HOSTILE if hostile else "positive")
    exps, inputs, failures = [], [], []
    true: dict[str, str] = {}
    all_probs: dict[str, list[float]] = {}
    for i in range(n_inputs):
        words = [str(w) for w in rng.choice(WORDS, size=n_words)]
        if hostile and i == 0:
            words[1] = HOSTILE
        text = " ".join(words)
        probs = _softmax(rng.normal(size=3) * 2)
        order = np.argsort(-probs, kind="stable")
        pred = Target(int(order[0]), labels[order[0]], float(probs[order[0]]))
        all_probs[str(i)] = [float(p) for p in probs]
        true[str(i)] = labels[order[1]] if i == 1 else labels[order[0]]
        if hostile and i == n_inputs - 1 and n_inputs > 1:
            inputs.append(InputRecord(i, "text", text=HOSTILE, note="failed"))
            failures.append(Failure(i, None, f"input {i}: cannot tokenise {HOSTILE}"))
            continue
        known = {} if labels_in_run else {"label": true[str(i)], "probabilities": tuple(all_probs[str(i)])}
        inputs.append(InputRecord(i, "text", text=text, prediction=pred, note="truncated from 700 to 512 tokens" if i == 1 else None, **known))
        ft = [[w[:3], "##" + w[3:]] if len(w) > 5 else [w] for w in words]
        for m in methods:
            if hostile and i == 1 and m == "lime":
                failures.append(Failure(i, m, f"lime failed on {HOSTILE}: surrogate did not converge"))
                continue
            for k in order[:targets]:
                scores = rng.normal(size=n_words).astype(np.float32)
                if i in no_evidence:
                    scores = scores * np.float32(1e-6)
                extras: dict = {"feature_tokens": ft}
                if m == "attention":
                    scores = np.abs(scores)
                    extras.update(_attention_extras(rng, words, layers, heads))
                settings = {"ig": {"n_steps": 50, "baseline": "mask"}, "shap": {"max_evals": 500, "baseline": "drop"},
                            "lime": {"num_samples": 1000, "mask": HOSTILE if hostile else "mask"}}.get(m, {})
                settings = {**settings, "output": "probability"}
                checks = _checks(m, rng, scores, bad=(i == 0))
                if i in no_evidence and m == "ig":
                    checks.update(output_change=2.9e-6, convergence_delta=4e-6)
                elif i in no_evidence and m in ("shap", "lime"):
                    checks["noise_floor"] = 1e-5
                exps.append(
                    Explanation(
                        method=m, family="text-classifier", input=i, target=Target(int(k), labels[k], float(probs[k])),
                        features=tuple(words), scores=scores, granularity="word", settings=settings,
                        seconds=float(rng.uniform(0.01, 1)), rows=int(rng.integers(1, 500)),
                        checks=checks, extras=extras, cached_rows=int(rng.integers(0, 40)) if m in ("shap", "lime") else 0,
                        self_checks=_self_checks(m, checks, np.random.default_rng([seed, i, int(k)]), bad=(i == 0)),
                    )
                )
    model = ModelInfo(
        "text-classifier", f"models/{HOSTILE if hostile else 'bert'}", "sha256:0123456789abcdef", 94979, labels,
        architecture="BertForSequenceClassification", layers=layers, heads=heads, max_length=128,
    )
    run = _run(methods, "word", exps, "mask")
    if labels_in_run:
        run.update(labels=true, probabilities=all_probs)
    return Results(exps, model=model, inputs=inputs, failures=failures, run=run)


def lm_results(
    n_inputs: int = 2, n_prompt: int = 6, n_new: int = 4, methods: Sequence[str] = ("ig", "attention"),
    *, hostile: bool = True, seed: int = 1,
) -> Results:
    """Return causal-LM Results: one explanation per generated token and method, then the whole continuation."""
    from explain.results.explanation import Explanation, InputRecord, ModelInfo, Results, Target

    rng = np.random.default_rng(seed)
    exps, inputs = [], []
    for i in range(n_inputs):
        prompt = [str(w) for w in rng.choice(WORDS, size=n_prompt)]
        if hostile and i == 0:
            prompt[2] = HOSTILE
        new = [" " + str(w) for w in rng.choice(WORDS, size=n_new)]
        if hostile and i == 0:
            new[1] = " " + HOSTILE
        inputs.append(InputRecord(i, "prompt", text=" ".join(prompt), continuation="".join(new)))
        ids, probs = rng.integers(50000, size=n_new), rng.uniform(0.05, 0.9, size=n_new)
        for m in methods:
            for j, tok in enumerate(new + [None]):
                context = prompt + [w.strip() for w in new[:j]] if tok is not None else prompt
                scores = rng.normal(size=len(context)).astype(np.float32)
                # GPT-2 style byte-level BPE: a leading space shows as "Ġ" (the report must clean it).
                extras: dict = {"feature_tokens": [[("Ġ" if k else "") + w] for k, w in enumerate(context)]}
                if m == "attention":
                    scores = np.abs(scores)
                    extras.update(_attention_extras(rng, context, 2, 2))
                    extras["tokens"] = ["Ġ" + t if k else t for k, t in enumerate(extras["tokens"])]
                    extras["query"] = extras["answer_row"] = len(extras["tokens"]) - 1
                target = (
                    Target(int(ids[j]), tok, float(probs[j]), position=n_prompt + j)
                    if tok is not None
                    else Target(-1, "".join(new), float(np.prod(probs)), position=None)
                )
                exps.append(
                    Explanation(
                        method=m, family="causal-lm", input=i, target=target, features=tuple(context), scores=scores,
                        granularity="token", seconds=0.05, rows=8 if m != "attention" else 1, cached_rows=32 if m != "attention" else 0,
                        checks=(c := _checks(m, rng, scores, bad=False)), extras=extras,
                        settings={"baseline": "eos", "output": "log-probability"} if m != "attention" else {"output": "log-probability"},
                        self_checks=_self_checks(m, c, np.random.default_rng([seed, i, j]), bad=False),
                    )
                )
    model = ModelInfo("causal-lm", "models/tiny-gpt", "sha256:fedcba9876543210", 120000, (), architecture="GPT2LMHeadModel", layers=2, heads=2)
    return Results(exps, model=model, inputs=inputs, run=_run(methods, "token", exps, "eos"))


def image_results(
    n_inputs: int = 2, size: int = 28, methods: Sequence[str] = ("gradcam", "ig", "lime"), *, hostile: bool = True, seed: int = 2,
    targets: int = 1,
) -> Results:
    """Return image-classifier Results: image_png inputs, H x W pixel scores, LIME segments, `targets` classes each."""
    from explain.results.explanation import Explanation, InputRecord, ModelInfo, Results, Target

    rng = np.random.default_rng(seed)
    labels = tuple(str(d) for d in range(10))
    exps, inputs = [], []
    true: dict[str, str] = {}
    all_probs: dict[str, list[float]] = {}
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n_inputs):
        cy, cx = rng.integers(size // 4, 3 * size // 4, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 8) ** 2))
        rgb = np.repeat((blob * 255).astype(np.uint8)[..., None], 3, axis=2)
        k = int(rng.integers(10))
        target = Target(k, labels[k], float(rng.uniform(0.5, 1)))
        rest = np.random.default_rng([seed, i]).dirichlet(np.ones(9)) * (1 - target.probability)
        probs = np.insert(rest, k, target.probability)
        all_probs[str(i)] = [float(p) for p in probs]
        true[str(i)] = labels[k] if i % 2 == 0 else labels[(k + 1) % 10]
        order = np.argsort(-probs, kind="stable")[:targets]
        path = f"digits/{HOSTILE if hostile else 'digit'}-{i}.png"
        inputs.append(InputRecord(i, "image", path=path, image_png=png_base64(rgb), width=size, height=size, prediction=target,
                                  label=true[str(i)], probabilities=tuple(all_probs[str(i)])))
        segments = (yy // (size // 4)) * 4 + xx // (size // 4)
        for m in methods:
            for c in order:
                t = target if c == k else Target(int(c), labels[c], float(probs[c]))
                if m == "gradcam":
                    scores = (blob + 0.1 * rng.random((size, size))).astype(np.float32)
                elif m == "lime":
                    scores = rng.normal(size=int(segments.max()) + 1)[segments].astype(np.float32)
                else:
                    scores = (blob * rng.normal(size=(size, size))).astype(np.float32)
                extras = {"segments": segments.astype(np.int32)} if m == "lime" else {}
                exps.append(
                    Explanation(
                        method=m, family="image-classifier", input=i, target=t, features=(), scores=scores,
                        granularity="pixel", seconds=0.2, rows=64, checks=(ch := _checks(m, rng, scores, bad=False)), extras=extras,
                        settings={"baseline": "blur", "output": "probability"} if m != "gradcam" else {"output": "probability"},
                        self_checks=_self_checks(m, ch, np.random.default_rng([seed, i, int(c)]), bad=False),
                    )
                )
    model = ModelInfo("image-classifier", "models/digits-cnn", "sha256:00ff00ff00ff00ff", 50000, labels, architecture="SmallCNN")
    return Results(exps, model=model, inputs=inputs, run=_run(methods, "pixel", exps, "blur"))


def with_metrics(results: Results, *, flagged: Sequence[str] = ("attention",), rationale_inputs: int = 1, seed: int = 3) -> Results:
    """Return `results` with trust metrics as explain.metrics.evaluate writes them (metrics, curves, run["metrics"]).

    Every method beats its random baseline except LIME's deletion AUC; the methods in `flagged`
    fail the sanity check; the first `rationale_inputs` inputs carry rationale scores.
    """
    from explain.results.explanation import Results
    from explain.metrics import agreement as agree
    from explain.metrics.summary import summarise

    rng = np.random.default_rng(seed)
    steps = np.linspace(0, 1, 11)
    chance: dict[tuple, dict] = {}
    pairs = agree.agreement(list(results))
    means = agree.mean_agreement(pairs)
    out = []
    for e in results:
        key = (e.input, e.target.index, e.target.position)
        if key not in chance:
            chance[key] = {"deletion_auc_random": float(rng.uniform(0.4, 0.5)), "insertion_auc_random": float(rng.uniform(0.4, 0.5)),
                           "comprehensiveness_random": float(rng.uniform(0.1, 0.2)), "sufficiency_random": float(rng.uniform(0.3, 0.4))}
        c = dict(e.metrics)
        r = chance[key]
        worse = e.method == "lime"
        c.update(r)
        c["deletion_auc"] = r["deletion_auc_random"] + (0.05 if worse else -float(rng.uniform(0.15, 0.3)))
        c["insertion_auc"] = r["insertion_auc_random"] + float(rng.uniform(0.1, 0.3))
        c["comprehensiveness"] = r["comprehensiveness_random"] + float(rng.uniform(0.1, 0.4))
        c["sufficiency"] = r["sufficiency_random"] - float(rng.uniform(0.1, 0.25))
        bad = e.method in flagged
        c["sanity_rank_corr"] = float(rng.uniform(0.8, 0.95)) if bad else float(rng.uniform(-0.2, 0.2))
        c["sanity_flag"] = 1.0 if bad else 0.0
        m = means.get((*agree.target_key(e), e.method))
        if m is not None and np.isfinite(m):
            c["agreement_spearman"] = m
        if e.input < rationale_inputs:
            c["rationale_precision"], c["pointing_game"] = 0.5, 1.0
        x = dict(e.extras)
        x.update({"curve_fractions": steps.astype(np.float32),
                  "deletion_curve": np.exp(-steps * (2 if worse else 6)).astype(np.float32),
                  "insertion_curve": (1 - np.exp(-steps * 5)).astype(np.float32),
                  "deletion_curve_random": (1 - steps).astype(np.float32), "insertion_curve_random": steps.astype(np.float32),
                  "faithfulness_removal": "mask", "faithfulness_output": "probability",
                  "sanity_curve": np.asarray([0.9, 0.5, c["sanity_rank_corr"]], dtype=np.float32)})
        out.append(e.replace(metrics=c, extras=x))
    methods = list(dict.fromkeys(e.method for e in out))
    curves = {m: {"mean": [0.9, 0.5, 0.88 if m in flagged else 0.05], "std": [0.02, 0.1, 0.05]} for m in methods}
    metrics = {
        "settings": {"metrics": ["faithfulness", "agreement", "sanity", "rationale"], "seed": 0, "steps": 10, "sanity_rho_limit": 0.5},
        "methods": summarise(out),
        "agreement": {"pairs": agree.pair_summary(pairs), "per_input": pairs},
        "sanity": {"blocks": ["classifier", "encoder.layer.1", "embeddings"], "curves": curves,
                   "mean_abs_rank_corr": {m: 0.88 if m in flagged else 0.1 for m in methods},
                   "flagged": {m: m in flagged for m in methods}},
        "errors": [], "seconds": 1.5, "rows": 1234,
    }
    return Results(out, model=results.model, inputs=results.inputs, failures=results.failures, run={**results.run, "metrics": metrics})


def planted_text_results(
    n_inputs: int = 1000, n_words: int = 12, methods: Sequence[str] = ("ig", "shap", "lime"), *, seed: int = 4,
) -> Results:
    """Return many small text explanations with a planted cause: 'great' decides positive, 'awful' negative.

    Each input holds one cue word, which gets score 1 (the others ~N(0, 0.1)); every 97th input's
    LIME fails and input 500 (when there is one) fails altogether; input 7 is the slowest.
    """
    from explain.results.explanation import Explanation, Failure, InputRecord, ModelInfo, Results, Target

    rng = np.random.default_rng(seed)
    labels = ("negative", "positive")
    filler = [w for w in WORDS if w not in ("great", "awful", "good", "bad")]
    exps, inputs, failures = [], [], []
    for i in range(n_inputs):
        k = int(rng.integers(2))
        words = [str(w) for w in rng.choice(filler, size=n_words)]
        cue = int(rng.integers(n_words))
        words[cue] = "great" if k == 1 else "awful"
        target = Target(k, labels[k], float(rng.uniform(0.6, 0.99)))
        if i == 500:
            inputs.append(InputRecord(i, "text", text=" ".join(words), note="failed"))
            failures.append(Failure(i, None, f"input {i}: the tokenizer refused it"))
            continue
        inputs.append(InputRecord(i, "text", text=" ".join(words), prediction=target))
        for m in methods:
            if m == "lime" and i % 97 == 5:
                failures.append(Failure(i, m, "lime failed: surrogate did not converge"))
                continue
            scores = (rng.normal(size=n_words) * 0.1).astype(np.float32)
            scores[cue] = 1.0
            exps.append(
                Explanation(
                    method=m, family="text-classifier", input=i, target=target, features=tuple(words), scores=scores,
                    granularity="word", seconds=5.0 if i == 7 else float(rng.uniform(0.01, 0.5)), rows=int(rng.integers(10, 300)),
                    checks=(c := _checks(m, rng, scores, bad=False)), settings={"baseline": "mask"} if m != "attention" else {},
                    self_checks=_self_checks(m, c, rng, bad=False),
                )
            )
    model = ModelInfo("text-classifier", "models/planted-bert", "sha256:5151515151515151", 94979, labels,
                      architecture="BertForSequenceClassification", layers=2, heads=4, max_length=64)
    return Results(exps, model=model, inputs=inputs, failures=failures, run=_run(methods, "word", exps))
