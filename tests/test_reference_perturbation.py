"""Perturbation methods against their libraries and exact references, on the bundled models.

Each reference evaluates the model itself (token ids or pixels built here, not through the
adapter's `evaluate`), so a bug in the adapter's masking, the method's bookkeeping or the way
the library is called shows up as a difference. Tolerances are stated at each assertion:
Adaptive budgets are off in these comparisons (a fixed budget is what the libraries run;
tests/test_budgets.py checks the adaptive rounds against the fixed budget).
- SHAP vs shap.Explainer (Partition) with shap's own tabular Partition masker over the same
  keep-masks, hierarchy, budget and tie-break seed: 1e-5 x max|value| (float32 model rows);
- SHAP vs exact Owen values (all coalitions the hierarchy allows, enumerated here): 1e-5 x max;
  vs exact Shapley values (all 2^n coalitions): Owen values are not Shapley values in general,
  so the top feature must be the same and the correlation >= 0.95;
- LIME vs lime's LimeTextExplainer (same seed, samples) and vs an exact weighted ridge solve on
  the same neighbourhood: 1e-4 x max|weight|, R^2 to 1e-4;
- ablation vs captum FeatureAblation on the model (same word masks, same fill token) and vs
  direct leave-one-word-out forwards (drop): 1e-5 absolute;
- occlusion vs captum Occlusion on the model (same window, stride, fill): 1e-5 absolute.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import explain
from explain.adapters.base import contiguous_linkage
from explain.adapters.causal_lm import CausalLMAdapter
from explain.adapters.image import ImageClassifierAdapter
from explain.adapters.text import TextClassifierAdapter

from conftest import MODELS
from planted_data import digit_images, gpt_prompts, sentiment_examples

SEED = 3


# ---- fixtures: the bundled models and one short planted input each -------------------------
def _load(name: str) -> Any:
    path = MODELS / name
    if not (path / "config.json").exists():
        pytest.skip(f"bundled model examples/models/{name} is missing")
    return explain.load(path, device="cpu")


@pytest.fixture(scope="module")
def bert() -> TextClassifierAdapter:
    return _load("sentiment-bert")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def gpt() -> CausalLMAdapter:
    return _load("planted-gpt2")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cnn() -> ImageClassifierAdapter:
    return _load("digits-cnn")  # type: ignore[no-any-return]


def bert_text() -> str:
    """A held-out planted sentence of 6..10 words, no word repeated (lime's bow features = words)."""
    for text, _, word in sentiment_examples(200, seed=123, split="heldout"):
        words = text.split()
        if word and 6 <= len(words) <= 10 and len(set(words)) == len(words):
            return text
    raise AssertionError("no short planted sentence")


def gpt_prompt() -> str:
    for prompt, _, cue in gpt_prompts(50, seed=0, split="heldout"):
        if cue and len(prompt.split()) <= 10:
            return prompt
    raise AssertionError("no short cued prompt")


# ---- direct model functions: keep-mask rows (0/1 floats, one column per word) -> outputs --------
def bert_direct(m: TextClassifierAdapter, text: str, target: int, fill: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """f(keep rows) from token ids built here: removed words' tokens become `fill` (None: dropped)."""
    enc = m.tokenizer(text)
    ids, word = np.asarray(enc["input_ids"]), np.asarray([-1 if w is None else w for w in enc.word_ids()])

    def f(keep: np.ndarray) -> np.ndarray:
        out = []
        for k in np.asarray(keep) > 0.5:
            kept = (word < 0) | k[np.maximum(word, 0)]
            row = ids[kept] if fill is None else np.where(kept, ids, fill)
            with torch.no_grad():
                out.append(torch.softmax(m.model(input_ids=torch.tensor([row.tolist()])).logits.float(), -1)[0, target].item())
        return np.asarray(out)

    return f


def gpt_direct(m: CausalLMAdapter, prompt: str, fill: int | None) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """f(keep rows) = log p(first generated token | context with removed words dropped or filled)."""
    gen = m.prepare(prompt, 0, max_new_tokens=1).state
    ctx, target = list(gen.ids[: gen.n_prompt]), gen.ids[gen.n_prompt]
    assert len(m.tokenizer(" " + prompt)["input_ids"]) == len(prompt.split()) == len(ctx)  # one token per word

    def f(keep: np.ndarray) -> np.ndarray:
        out = []
        for k in np.asarray(keep) > 0.5:
            row = [t for t, kk in zip(ctx, k) if kk] if fill is None else [t if kk else fill for t, kk in zip(ctx, k)]
            row = row or [m.tokenizer.bos_token_id]  # an empty context is scored after start-of-text
            with torch.no_grad():
                out.append(torch.log_softmax(m.model(input_ids=torch.tensor([row])).logits[0, -1].double(), -1)[target].item())
        return np.asarray(out)

    return f, target


# ---- exact references ------------------------------------------------------------------------
def exact_owen(f: Callable[[np.ndarray], np.ndarray], clustering: np.ndarray, d: int) -> np.ndarray:
    """Owen values of a binary hierarchy: each sibling on a leaf's path is in or out with weight 1/2."""
    parent_rows = {int(c): (r, 1 - side) for r, row in enumerate(clustering) for side, c in enumerate(row[:2])}

    def members(node: int) -> list[int]:
        if node < d:
            return [node]
        a, b = clustering[node - d, :2]
        return members(int(a)) + members(int(b))

    values = np.zeros(d)
    for i in range(d):
        siblings, node = [], i
        while node in parent_rows:
            r, other = parent_rows[node]
            siblings.append(members(int(clustering[r, other])))
            node = d + r
        for ins in itertools.product([0, 1], repeat=len(siblings)):
            base = np.zeros(d)
            for take, group in zip(ins, siblings):
                base[group] = take
            with_i = base.copy()
            with_i[i] = 1
            values[i] += float(np.diff(f(np.stack([base, with_i])))[0]) / 2 ** len(siblings)
    return values


def exact_shapley(f: Callable[[np.ndarray], np.ndarray], d: int) -> np.ndarray:
    """Shapley values by all 2^d coalitions."""
    masks = np.array(list(itertools.product([0, 1], repeat=d)), dtype=float)
    out = dict(zip(map(tuple, masks.astype(int)), f(masks)))
    phi = np.zeros(d)
    for s in out:
        for i in range(d):
            if not s[i]:
                t = s[:i] + (1,) + s[i + 1 :]
                k = sum(s)
                phi[i] += math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d) * (out[t] - out[s])
    return phi


def shap_library(f: Callable[[np.ndarray], np.ndarray], clustering: np.ndarray, d: int, max_evals: int, seed: int) -> np.ndarray:
    """shap.Explainer (Partition) with shap's own tabular masker: background all-removed, input all-kept."""
    import shap

    masker = shap.maskers.Partition(np.zeros((1, d)), clustering=clustering)
    explainer = shap.Explainer(f, masker, algorithm="partition")
    state = np.random.get_state()
    np.random.seed(seed)  # shap breaks priority ties with numpy's global stream; ours seeds it so
    try:
        out = explainer(np.ones((1, d)), max_evals=max_evals, batch_size=64, silent=True)
    finally:
        np.random.set_state(state)
    return np.asarray(out.values[0], dtype=np.float64)


def close(ours: np.ndarray, theirs: np.ndarray, rel: float) -> None:
    np.testing.assert_allclose(ours, theirs, atol=rel * float(np.abs(theirs).max()), rtol=0)


# ---- SHAP -------------------------------------------------------------------------------------
def test_shap_on_bert_equals_shap_and_the_exact_owen_values(bert: TextClassifierAdapter) -> None:
    text = bert_text()
    [e] = explain.explain(bert, [text], methods=["shap"], shap={"max_evals": 300, "adaptive": False}, seed=SEED)
    d = len(e.features)
    f = bert_direct(bert, text, e.target.index, bert.mask_id)
    tree = contiguous_linkage(d)
    close(e.scores, shap_library(f, tree, d, 300, SEED), 1e-5)
    close(e.scores, exact_owen(f, tree, d), 1e-5)
    shapley = exact_shapley(f, d)
    assert np.argmax(e.scores) == np.argmax(shapley) and np.corrcoef(e.scores, shapley)[0, 1] >= 0.95
    assert e.self_checks[0].sentence.startswith("exact")  # 300 evaluations expand every cluster


def test_shap_at_a_small_budget_still_equals_shap_called_the_same_way(bert: TextClassifierAdapter) -> None:
    """The budget runs out mid-tree: shap's order of expansion (and its seeded ties) must match too."""
    text = bert_text()
    [e] = explain.explain(bert, [text], methods=["shap"], shap={"max_evals": 24, "adaptive": False}, seed=SEED)
    d = len(e.features)
    ref = shap_library(bert_direct(bert, text, e.target.index, bert.mask_id), contiguous_linkage(d), d, 24, SEED)
    close(e.scores, ref, 1e-5)


def test_shap_on_gpt_equals_shap_and_the_exact_owen_values(gpt: CausalLMAdapter) -> None:
    prompt = gpt_prompt()
    [e] = explain.explain(gpt, [prompt], methods=["shap"], target=0, max_new_tokens=1, shap={"mask": "drop", "adaptive": False}, seed=SEED)
    d = len(e.features)
    f, _ = gpt_direct(gpt, prompt, None)
    tree = contiguous_linkage(d)
    close(e.scores, shap_library(f, tree, d, 500, SEED), 1e-5)
    close(e.scores, exact_owen(f, tree, d), 1e-5)
    shapley = exact_shapley(f, d)
    assert np.argmax(e.scores) == np.argmax(shapley) and np.corrcoef(e.scores, shapley)[0, 1] >= 0.95


def cnn_direct(m: ImageClassifierAdapter, img: np.ndarray, segments: np.ndarray, target: int, fill: str) -> Callable[[np.ndarray], np.ndarray]:
    """f(keep rows) on pixels built here: removed segments take the fill image's pixels."""
    ex = m.prepare(img, 0)
    x, filled = ex.state.pixels, m.fill(ex, fill)  # (1, C, H, W) each
    seg = torch.from_numpy(segments)

    def f(keep: np.ndarray) -> np.ndarray:
        k = torch.from_numpy(np.asarray(keep) > 0.5)  # (B, d)
        kept = k[:, seg.long()][:, None]  # (B, 1, H, W)
        with torch.no_grad():
            return torch.softmax(m.logits(torch.where(kept, x, filled)).float(), -1)[:, target].numpy()

    return f


def test_shap_on_the_cnn_equals_shap_and_the_exact_owen_values(cnn: ImageClassifierAdapter) -> None:
    img = next(i for i, _, box in digit_images(50, 11, split="heldout") if box is not None)
    [e] = explain.explain(cnn, [img], methods=["shap"], shap={"n_segments": 8, "max_evals": 400, "adaptive": False}, seed=SEED)
    seg = e.extras["segments"]
    d = int(seg.max()) + 1
    assert d <= 12, d
    values = np.array([e.scores[seg == s][0] for s in range(d)])
    view = cnn.perturbation_view(cnn.prepare(img, 0), e.target, n_segments=8)
    f = cnn_direct(cnn, img, seg, e.target.index, e.settings["baseline"])
    close(values, shap_library(f, view.clustering, d, 400, SEED), 1e-5)
    close(values, exact_owen(f, view.clustering, d), 1e-5)


# ---- LIME -------------------------------------------------------------------------------------
def test_lime_on_bert_equals_lime_text_explainer(bert: TextClassifierAdapter) -> None:
    from lime.lime_text import LimeTextExplainer

    text = bert_text()
    [e] = explain.explain(bert, [text], methods=["lime"], lime={"num_samples": 600, "adaptive": False}, seed=SEED)

    def predict(texts: list[str]) -> np.ndarray:
        enc = bert.tokenizer(list(texts), return_tensors="pt", padding=True)
        with torch.no_grad():
            return torch.softmax(bert.model(**enc).logits, -1).numpy()

    out = LimeTextExplainer(random_state=SEED, split_expression=r"\s+", bow=True).explain_instance(
        text, predict, labels=(e.target.index,), num_features=len(e.features), num_samples=600
    )
    theirs = dict(out.as_list(label=e.target.index))
    close(e.scores, np.array([theirs[w] for w in e.features]), 1e-4)
    assert e.checks["score"] == pytest.approx(out.score, abs=1e-4)


def long_texts(n: int = 3) -> list[str]:
    """Held-out planted sentences joined into texts of 20-40 words (words repeat: 'the', 'a', ...)."""
    sentences = [t for t, _, _ in sentiment_examples(300, seed=321, split="heldout") if "[" not in t]
    texts, words = [], []
    for sentence in sentences:
        words += [*sentence.split(), "and"] if words else sentence.split()  # 'and' between sentences: a repeated word
        if len(words) >= 20:
            if len(words) <= 40:
                texts.append(" ".join(words))
            words = []
        if len(texts) == n:
            return texts
    raise AssertionError("not enough 20-40-word texts")


def test_lime_on_20_to_40_words_equals_lime_asked_for_every_word_not_limes_default_ten(bert: TextClassifierAdapter) -> None:
    """We fit every word (feature_selection='none'); lime's explain_instance keeps num_features=10 by default.

    Asked for every word, lime's 'auto' selection keeps all of them and refits: our weights, to 1e-4.
    At its default of 10 it keeps the 10 largest |weights| of a first fit, sets the rest to 0 and
    refits those 10 alone: other weights than ours on texts over 10 words, which is what this test
    shows (docs/methods.md states it).
    """
    from lime.lime_text import LimeTextExplainer

    def predict(texts: list[str]) -> np.ndarray:
        enc = bert.tokenizer(list(texts), return_tensors="pt", padding=True)
        with torch.no_grad():
            return torch.softmax(bert.model(**enc).logits, -1).numpy()

    for text in long_texts(2):
        d = len(text.split())
        assert 20 <= d <= 40 and len(set(text.split())) < d  # long, and with repeated words
        [e] = explain.explain(bert, [text], methods=["lime"], lime={"num_samples": 1000, "baseline": "drop", "adaptive": False}, seed=SEED)
        assert e.features == tuple(text.split())  # every occurrence is its own feature
        # bow=False: each occurrence is a feature, as ours; an empty mask string drops the word, as baseline=drop
        lime = LimeTextExplainer(random_state=SEED, split_expression=r"\s+", bow=False, mask_string="")
        every = lime.explain_instance(text, predict, labels=(e.target.index,), num_features=d, num_samples=1000)
        theirs = np.zeros(d)
        for i, w in every.as_map()[e.target.index]:
            theirs[i] = w
        close(e.scores, theirs, 1e-4)
        assert e.checks["score"] == pytest.approx(every.score, abs=1e-4)
        default = lime.explain_instance(text, predict, labels=(e.target.index,), num_samples=1000)  # num_features=10
        ten = dict(default.as_map()[e.target.index])
        assert len(ten) == 10 < d
        differ = max(abs(w - e.scores[i]) for i, w in ten.items()) / np.abs(e.scores).max()
        assert differ > 1e-3, differ  # lime's default weights are not ours


def weighted_ridge(data: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, float]:
    """Return (coefficients, weighted R^2) of ridge with an intercept, solved in closed form."""
    w = weights / weights.sum()
    xm, ym = w @ data, w @ y
    xc, yc = data - xm, y - ym
    sw = np.sqrt(weights)[:, None]
    a, b = xc * sw, yc * sw[:, 0]
    coef = np.linalg.solve(a.T @ a + alpha * np.eye(data.shape[1]), a.T @ b)
    pred = xc @ coef
    r2 = 1 - (weights * (yc - pred) ** 2).sum() / (weights * yc**2).sum()
    return coef, float(r2)


def test_lime_on_gpt_equals_an_exact_weighted_ridge_on_the_same_neighbours(gpt: CausalLMAdapter) -> None:
    from sklearn.utils import check_random_state

    from explain.methods.lime_surrogate import sample_neighbours

    prompt = gpt_prompt()
    n = 500
    [e] = explain.explain(gpt, [prompt], methods=["lime"], target=0, max_new_tokens=1, lime={"num_samples": n, "baseline": "drop", "adaptive": False}, seed=SEED)
    d = len(e.features)
    data = sample_neighbours("lime-text", d, n, check_random_state(SEED))  # lime's own draw, as the method
    f, _ = gpt_direct(gpt, prompt, None)
    y = f(data)
    norms = np.linalg.norm(data, axis=1) * np.linalg.norm(data[0])
    cos = 1 - np.divide(data @ data[0], norms, out=np.zeros(n), where=norms > 0)  # every word dropped: distance 1
    kernel = np.sqrt(np.exp(-((cos * 100) ** 2) / 25.0**2))
    coef, r2 = weighted_ridge(data, y, kernel)
    close(e.scores, coef, 1e-4)
    assert e.checks["score"] == pytest.approx(r2, abs=1e-4)


# ---- ablation ---------------------------------------------------------------------------------
def test_ablation_on_bert_equals_captum_feature_ablation(bert: TextClassifierAdapter) -> None:
    from captum.attr import FeatureAblation

    text = bert_text()
    [e] = explain.explain(bert, [text], methods=["ablation"], ablation={"mask": "mask"})
    enc = bert.tokenizer(text, return_tensors="pt")
    words = [w for w in enc.word_ids()]
    d = len(e.features)
    groups = torch.tensor([[d if w is None else w for w in words]])  # specials: one extra group, ignored

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(bert.model(input_ids=ids).logits.float(), -1)[:, e.target.index]

    with torch.no_grad():
        attr = FeatureAblation(forward).attribute(enc["input_ids"], baselines=bert.mask_id, feature_mask=groups)[0]
    theirs = np.array([attr[words.index(i)].item() for i in range(d)])
    np.testing.assert_allclose(e.scores, theirs, atol=1e-5, rtol=0)


def test_ablation_on_gpt_equals_captum_and_leave_one_out(gpt: CausalLMAdapter) -> None:
    from captum.attr import FeatureAblation

    prompt = gpt_prompt()
    eos = gpt.tokenizer.eos_token_id
    [e] = explain.explain(gpt, [prompt], methods=["ablation"], target=0, max_new_tokens=1, ablation={"mask": "eos"})
    f, target = gpt_direct(gpt, prompt, eos)
    gen = gpt.prepare(prompt, 0, max_new_tokens=1).state
    ids = torch.tensor([list(gen.ids[: gen.n_prompt])])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(gpt.model(input_ids=x).logits[:, -1].double(), -1)[:, target]

    with torch.no_grad():
        attr = FeatureAblation(forward).attribute(ids, baselines=eos)[0].numpy()
    np.testing.assert_allclose(e.scores, attr, atol=1e-5, rtol=0)
    # dropping words instead: each score is f(all) - f(all but that word), forwarded directly
    [dropped] = explain.explain(gpt, [prompt], methods=["ablation"], target=0, max_new_tokens=1, ablation={"mask": "drop"})
    f_drop, _ = gpt_direct(gpt, prompt, None)
    d = len(dropped.features)
    rows = np.vstack([np.ones(d), 1 - np.eye(d)])
    out = f_drop(rows)
    np.testing.assert_allclose(dropped.scores, out[0] - out[1:], atol=1e-5, rtol=0)


# ---- occlusion --------------------------------------------------------------------------------
@pytest.mark.parametrize("fill, window, stride", [("black", 7, 3), ("grey", 4, 4)])
def test_occlusion_on_the_cnn_equals_captum_on_the_plain_model(cnn: ImageClassifierAdapter, fill: str, window: int, stride: int) -> None:
    from captum.attr import Occlusion

    img = next(i for i, _, box in digit_images(50, 11, split="heldout") if box is not None)
    [e] = explain.explain(cnn, [img], methods=["occlusion"], occlusion={"mask": fill, "window": window, "stride": stride})
    ex = cnn.prepare(img, 0)
    x = ex.state.pixels
    c = x.shape[1]

    def forward(p: torch.Tensor) -> torch.Tensor:
        return torch.softmax(cnn.logits(p).float(), -1)[:, e.target.index]  # the plain model, not the fast inference copy

    with torch.no_grad():
        ref = Occlusion(forward).attribute(x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride), baselines=cnn.fill(ex, fill))
    np.testing.assert_allclose(e.scores, ref[0, 0].numpy(), atol=1e-5, rtol=0)


# ---- cached rows --------------------------------------------------------------------------------
def test_rows_a_cache_answers_are_counted_as_cached(gpt: CausalLMAdapter) -> None:
    prompt = gpt_prompt()
    res = explain.explain(gpt, [prompt], methods=["shap", "ablation"], target=0, max_new_tokens=1, shap={"mask": "drop", "adaptive": False},
                          ablation={"mask": "drop"})
    shap_e, abl = res
    d = len(abl.features)
    # ablation asks for 1 + d rows (all kept, then each word dropped); SHAP's run already scored
    # every one of them (its hierarchy is expanded to single words), so the prefix cache answers all
    assert abl.rows == 0 and abl.cached_rows == 1 + d
    assert shap_e.rows > 0
