"""Integrated gradients against captum called directly on the bundled models, and its self-check.

Each reference is captum run on a forward written here from the Hugging Face / torch model itself
(input ids or pixels, not the adapter's view), with the same baseline, steps and noise.
Tolerances: same rule and points -> scores within 1e-4 of the largest |score| (float32 sums in a
different order; a wrong weight or point moves them by > 1e-2); completeness 1% of
|f(x) - f(baseline)| or 1e-4, the tolerance the adaptive loop uses.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import explain
from explain.gradients import PathSum, trapezoid_level, trapezoid_points

from conftest import MODELS

sys.path.insert(0, str(MODELS.parent))
from planted_data import digit_images, gpt_prompts, sentiment_examples  # noqa: E402

TEXTS = [t for t, _, w in sentiment_examples(60, seed=123, split="heldout") if w][:4]
PLAIN = {"baseline": "pad", "adaptive": False, "n_steps": 32}  # captum's Gauss-Legendre, 32 points


def close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-4) -> None:
    """Assert ours == ref within rel x max|ref| (and the same direction)."""
    ref = np.asarray(ref, dtype=np.float64)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * np.abs(ref).max() + 1e-8)
    cos = float(np.dot(ours, ref) / (np.linalg.norm(ours) * np.linalg.norm(ref)))
    assert cos > 0.9999


@pytest.fixture(scope="module")
def bert(sentiment_bert):  # type: ignore[no-untyped-def]
    return explain.load(sentiment_bert, device="cpu")


@pytest.fixture(scope="module")
def gpt():  # type: ignore[no-untyped-def]
    return explain.load(MODELS / "planted-gpt2", device="cpu")


@pytest.fixture(scope="module")
def cnn():  # type: ignore[no-untyped-def]
    return explain.load(MODELS / "digits-cnn", device="cpu")


def digit(i: int = 0) -> np.ndarray:
    return [img for img, _, box in digit_images(30, seed=5, split="heldout") if box is not None][i]


class BertRef:
    """The sentiment BERT written out: ids, pad baseline (special tokens kept), word groups, forwards."""

    def __init__(self, adapter, text: str, target: int) -> None:  # type: ignore[no-untyped-def]
        self.model, tok = adapter.model, adapter.tokenizer
        enc = tok(text, return_tensors="pt")
        self.ids = enc["input_ids"]
        special = torch.tensor(tok.get_special_tokens_mask(self.ids[0].tolist(), already_has_special_tokens=True)).bool()
        self.base_ids = torch.where(special, self.ids, torch.full_like(self.ids, tok.pad_token_id))
        words = enc.word_ids()
        self.groups = [[i for i, w in enumerate(words) if w == k] for k in range(max(w for w in words if w is not None) + 1)]
        self.target = target
        self.emb = self.model.get_input_embeddings()

    def from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(input_ids=ids).logits, -1)[:, self.target]

    def from_embeds(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(inputs_embeds=x).logits, -1)[:, self.target]

    def words(self, per_token: torch.Tensor) -> np.ndarray:
        t = per_token.detach().double().sum(-1)[0].numpy()
        return np.array([t[g].sum() for g in self.groups])

    def change(self) -> float:
        with torch.no_grad():
            return float(self.from_ids(self.ids) - self.from_ids(self.base_ids))


def pixel_forward(cnn, target: int):  # type: ignore[no-untyped-def]
    """digits-cnn from 0..1 pixels: normalise with its stated mean/std 0.5, softmax, the target class."""
    return lambda p: torch.softmax(cnn.model((p - 0.5) / 0.5), -1)[:, target]


def pixels(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).float()[None, None] / 255


# ---- against captum ------------------------------------------------------------------------
def test_text_ig_equals_captum_layer_ig(bert) -> None:  # type: ignore[no-untyped-def]
    from captum.attr import LayerIntegratedGradients

    for text in TEXTS[:2]:
        [e] = explain.explain(bert, [text], methods=["ig"], ig=PLAIN)
        ref = BertRef(bert, text, e.target.index)
        lig = LayerIntegratedGradients(ref.from_ids, ref.emb)
        attr = lig.attribute(ref.ids, baselines=ref.base_ids, n_steps=32, method="gausslegendre")
        assert len(ref.groups) == len(e.features)
        close(e.scores, ref.words(attr))


def test_adaptive_text_ig_equals_captum_trapezoid_on_the_points_it_ended_with(bert) -> None:  # type: ignore[no-untyped-def]
    from captum.attr import LayerIntegratedGradients

    [e] = explain.explain(bert, [TEXTS[0]], methods=["ig"], ig={"baseline": "pad"})
    n = e.settings["n_steps"]
    assert e.settings["method"] == "trapezoid" and n > 50  # it refined at least once
    ref = BertRef(bert, TEXTS[0], e.target.index)
    attr = LayerIntegratedGradients(ref.from_ids, ref.emb).attribute(ref.ids, baselines=ref.base_ids, n_steps=n, method="riemann_trapezoid")
    # captum's riemann_trapezoid weighs its n points 1/n (ends 1/(2n)) on a grid of spacing
    # 1/(n-1): its weights sum to (n-1)/n; the trapezoid rule proper is captum's x n/(n-1)
    close(e.scores, ref.words(attr) * n / (n - 1))


def test_gpt_ig_equals_captum_layer_ig(gpt) -> None:  # type: ignore[no-untyped-def]
    from captum.attr import LayerIntegratedGradients

    prompt = gpt_prompts(10, seed=7, split="heldout")[0][0]
    res = explain.explain(gpt, [prompt], methods=["ig"], ig={"baseline": "eos", "adaptive": False, "n_steps": 32})
    e = next(x for x in res if x.target.position is not None)
    ids = torch.tensor([gpt.tokenizer(prompt)["input_ids"]])
    ctx = ids[:, : e.target.position]
    assert ctx.shape[1] == len(e.features)  # one token per word in these prompts

    def forward(i: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(gpt.model(input_ids=i).logits[:, -1].float(), -1)[:, e.target.index]

    lig = LayerIntegratedGradients(forward, gpt.model.get_input_embeddings())
    attr = lig.attribute(ctx, baselines=torch.full_like(ctx, gpt.tokenizer.eos_token_id), n_steps=32, method="gausslegendre")
    close(e.scores, attr.detach().double().sum(-1)[0].numpy())


def test_image_ig_equals_captum_integrated_gradients(cnn) -> None:  # type: ignore[no-untyped-def]
    from captum.attr import IntegratedGradients

    for settings, rule in (({"baseline": "black", "adaptive": False, "n_steps": 32}, "gausslegendre"), ({"baseline": "black"}, "riemann_trapezoid")):
        [e] = explain.explain(cnn, [digit()], methods=["ig"], ig=settings)
        x, n = pixels(digit()), e.settings["n_steps"]
        attr = IntegratedGradients(pixel_forward(cnn, e.target.index)).attribute(x, baselines=torch.zeros_like(x), n_steps=n, method=rule)
        ref = attr.detach().double()[0, 0].numpy() * (n / (n - 1) if rule == "riemann_trapezoid" else 1.0)
        close(e.scores.ravel(), ref.ravel())


def test_riemann_trapezoid_is_captums_rule_and_is_recorded(cnn) -> None:  # type: ignore[no-untyped-def]
    """Asked for captum's riemann_trapezoid, we compute captum's riemann_trapezoid (weights sum to (n-1)/n)."""
    from captum.attr import IntegratedGradients

    [e] = explain.explain(cnn, [digit()], methods=["ig"], ig={"baseline": "black", "adaptive": False, "n_steps": 32, "method": "riemann_trapezoid"})
    assert e.settings["method"] == "riemann_trapezoid" and e.settings["n_steps"] == 32
    x = pixels(digit())
    attr = IntegratedGradients(pixel_forward(cnn, e.target.index)).attribute(x, baselines=torch.zeros_like(x), n_steps=32, method="riemann_trapezoid")
    close(e.scores.ravel(), attr.detach().double()[0, 0].numpy().ravel())
    [nested] = explain.explain(cnn, [digit()], methods=["ig"], ig={"baseline": "black", "adaptive": False, "n_steps": 32, "method": "trapezoid"})
    assert nested.settings["method"] == "trapezoid"
    np.testing.assert_allclose(e.scores, nested.scores * 31 / 32, rtol=1e-4, atol=1e-7)  # the two rules differ by (n-1)/n


def test_text_noise_tunnel_equals_captums(bert) -> None:  # type: ignore[no-untyped-def]
    from captum.attr import IntegratedGradients, NoiseTunnel

    text = TEXTS[1]
    [e] = explain.explain(bert, [text], methods=["ig"], ig={**PLAIN, "nt_samples": 4, "nt_stdev": 0.05}, seed=3)
    ref = BertRef(bert, text, e.target.index)
    with torch.no_grad():
        x, base = ref.emb(ref.ids), ref.emb(ref.base_ids)
    torch.manual_seed(3)  # the run's seed: the same noise draws as captum's
    attr, delta = NoiseTunnel(IntegratedGradients(ref.from_embeds)).attribute(
        x, baselines=base, nt_type="smoothgrad", nt_samples=4, stdevs=0.05, n_steps=32, method="gausslegendre",
        return_convergence_delta=True,
    )
    close(e.scores, ref.words(attr))
    # the integration gap: captum's per-sample deltas (sum(attr_s) - (f(x_s) - f(baseline)))
    assert e.checks["convergence_delta"] == pytest.approx(float(delta.abs().mean()), abs=1e-5)
    assert e.checks["output_change"] == pytest.approx(ref.change(), abs=1e-5)


def test_image_noise_tunnel_equals_captums(cnn) -> None:  # type: ignore[no-untyped-def]
    from captum.attr import IntegratedGradients, NoiseTunnel

    settings = {"baseline": "black", "adaptive": False, "n_steps": 32, "nt_samples": 3, "nt_stdev": 0.2}
    [e] = explain.explain(cnn, [digit(1)], methods=["ig"], ig=settings, seed=11)
    x = pixels(digit(1))
    torch.manual_seed(11)
    attr, delta = NoiseTunnel(IntegratedGradients(pixel_forward(cnn, e.target.index))).attribute(
        x, baselines=torch.zeros_like(x), nt_type="smoothgrad", nt_samples=3, stdevs=0.2, n_steps=32,
        method="gausslegendre", return_convergence_delta=True,
    )
    close(e.scores.ravel(), attr.detach().double()[0, 0].numpy().ravel())
    assert e.checks["convergence_delta"] == pytest.approx(float(delta.abs().mean()), abs=1e-5)


def test_the_noise_tunnel_reports_the_true_output_change(cnn) -> None:  # type: ignore[no-untyped-def]
    # Strong noise moves the model's output: the mean change over the noisy inputs is then far
    # from f(x) - f(baseline), which is what output_change must be (the old code reported the former).
    img = digit(2)
    [e] = explain.explain(cnn, [img], methods=["ig"], ig={"baseline": "black", "nt_samples": 6, "nt_stdev": 0.6})
    f = pixel_forward(cnn, e.target.index)
    with torch.no_grad():
        change = float(f(pixels(img)) - f(torch.zeros(1, 1, 32, 32)))
    assert e.checks["output_change"] == pytest.approx(change, abs=1e-5)
    assert abs(e.checks["noisy_output_change"] - change) > 0.05  # the two differ here: the test can tell them apart
    assert e.checks["delta_relative"] == pytest.approx(e.checks["convergence_delta"] / abs(change), rel=1e-6)
    [check] = [c for c in e.self_checks if c.name == "completeness"]
    assert check.passed and check.value <= max(0.01 * abs(change), 1e-4) and "noisy samples" in check.sentence


def test_one_incomplete_noise_sample_fails_the_check_even_when_the_mean_gap_passes(cnn) -> None:  # type: ignore[no-untyped-def]
    """16 fixed points, 8 noisy samples: the mean gap is within 1% of the output change, the worst sample's is not."""
    from captum.attr import IntegratedGradients, NoiseTunnel

    settings = {"baseline": "black", "adaptive": False, "n_steps": 16, "nt_samples": 8, "nt_stdev": 0.2}
    [e] = explain.explain(cnn, [digit(0)], methods=["ig"], ig=settings, seed=1)
    x = pixels(digit(0))
    torch.manual_seed(1)
    _, delta = NoiseTunnel(IntegratedGradients(pixel_forward(cnn, e.target.index))).attribute(
        x, baselines=torch.zeros_like(x), nt_type="smoothgrad", nt_samples=8, stdevs=0.2, n_steps=16,
        method="gausslegendre", return_convergence_delta=True,
    )
    gaps = delta.abs().double().numpy()  # captum's own per-sample gaps
    tol = max(0.01 * abs(e.checks["output_change"]), 1e-4)
    assert gaps.mean() <= tol < gaps.max()  # the case the mean would hide
    assert e.checks["convergence_delta"] == pytest.approx(gaps.mean(), abs=1e-5)
    [check] = [c for c in e.self_checks if c.name == "completeness"]
    assert not check.passed and not e.reliable and check.value == pytest.approx(gaps.max(), abs=1e-5)
    assert e.checks["worst_sample_delta"] == pytest.approx(gaps.max(), abs=1e-5)
    assert f"on {int((gaps > tol).sum())} of its 8 noisy samples" in check.sentence


# ---- completeness and its self-check -------------------------------------------------------
def test_completeness_holds_at_defaults_against_an_independent_output_change(bert, cnn) -> None:  # type: ignore[no-untyped-def]
    for e in explain.explain(bert, TEXTS, methods=["ig"], ig={"baseline": "pad"}):
        change = BertRef(bert, TEXTS[e.input], e.target.index).change()
        tol = max(0.01 * abs(change), 1e-4)
        assert abs(float(e.scores.sum()) - change) <= tol, (e.input, e.settings["n_steps"])
        [check] = [c for c in e.self_checks if c.name == "completeness"]
        assert check.name == "completeness" and check.passed and check.threshold == pytest.approx(tol, rel=1e-4)
        assert check.sentence.startswith("IG is complete")
    for i in range(2):
        [e] = explain.explain(cnn, [digit(i)], methods=["ig"], ig={"baseline": "black"})
        f = pixel_forward(cnn, e.target.index)
        with torch.no_grad():
            change = float(f(pixels(digit(i))) - f(torch.zeros(1, 1, 32, 32)))
        assert abs(float(e.scores.sum()) - change) <= max(0.01 * abs(change), 1e-4)
        assert e.reliable


def test_too_few_steps_fail_the_completeness_check(bert) -> None:  # type: ignore[no-untyped-def]
    # The bundled classifier is confident (p > 0.99): 4 fixed points miss the sharp turn of its
    # output along the path.
    [e] = explain.explain(bert, [TEXTS[0]], methods=["ig"], ig={"baseline": "pad", "adaptive": False, "n_steps": 4})
    [check] = [c for c in e.self_checks if c.name == "completeness"]
    change = BertRef(bert, TEXTS[0], e.target.index).change()
    assert abs(float(e.scores.sum()) - change) > 0.05 * abs(change)  # really incomplete
    assert not check.passed and not e.reliable and check.value > check.threshold
    assert "NOT complete" in check.sentence and "unreliable" in check.sentence and "4 steps" in check.sentence


# ---- the nested rule -----------------------------------------------------------------------
@pytest.mark.parametrize("points", [2, 5, 50])
def test_nested_trapezoid_levels_are_the_trapezoid_rule_without_repeats(points: int) -> None:
    for level in range(4):
        alphas: list[float] = []
        weights: list[float] = []
        for k in range(level + 1):
            a, w, scale = trapezoid_level(points, k)
            alphas += a
            weights += w
        n = trapezoid_points(points, level)
        assert len(alphas) == len(set(alphas)) == n  # every point once
        order = np.argsort(alphas)
        np.testing.assert_allclose(np.array(alphas)[order], np.linspace(0, 1, n), atol=1e-12)
        expected = np.full(n, 1 / (n - 1))
        expected[[0, -1]] /= 2
        np.testing.assert_allclose(np.array(weights)[order] * scale, expected, atol=1e-12)


def test_an_input_finishing_at_n_points_costs_n_gradient_rows(bert) -> None:  # type: ignore[no-untyped-def]
    for e in explain.explain(bert, TEXTS[:3], methods=["ig"], ig={"baseline": "pad"}):
        n = e.settings["n_steps"]
        assert e.rows == n + 2, (n, e.rows)  # n gradient rows + f(input) and f(baseline)
    assert max(e.settings["n_steps"] for e in explain.explain(bert, TEXTS[:3], methods=["ig"], ig={"baseline": "pad"})) > 50


# ---- out of memory -------------------------------------------------------------------------
def test_ig_halves_its_chunk_on_out_of_memory_and_gives_the_same_answer(bert, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    settings = {"baseline": "pad", "internal_batch_size": 64}
    [free] = explain.explain(bert, [TEXTS[2]], methods=["ig"], ig=settings)
    original = bert.model.forward
    calls: list[int] = []

    def small_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        x = kwargs.get("inputs_embeds")
        rows = (x if x is not None else kwargs.get("input_ids", args[0] if args else None)).shape[0]
        calls.append(rows)
        if rows > 7:
            raise torch.OutOfMemoryError("injected: more than 7 rows")
        return original(*args, **kwargs)

    monkeypatch.setattr(bert.model, "forward", small_memory)
    try:
        [tight] = explain.explain(bert, [TEXTS[2]], methods=["ig"], ig=settings)
        assert max(calls) > 7 and tight.settings["internal_batch_size"] <= 7  # it did run out, and went on smaller
        calls.clear()
        [again] = explain.explain(bert, [TEXTS[3]], methods=["ig"], ig=settings)
        assert max(calls) <= 7  # the runner remembers the size that fitted: no second out-of-memory
    finally:
        monkeypatch.setattr(bert.model, "forward", original)
        bert.runner.fitted.clear()
    np.testing.assert_allclose(tight.scores, free.scores, rtol=1e-5, atol=1e-7)
    assert tight.settings["n_steps"] == free.settings["n_steps"]
    assert tight.rows == free.rows  # failed chunks are not counted, and no point is evaluated twice


def test_the_output_change_forward_halves_on_out_of_memory(bert, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """f(x), f(baseline) and the noisy samples' outputs (nt_samples + 2 rows) go through the runner's halving."""
    settings = {"baseline": "pad", "adaptive": False, "n_steps": 4, "nt_samples": 10, "internal_batch_size": 4}
    [free] = explain.explain(bert, [TEXTS[1]], methods=["ig"], ig=settings)
    original, batch = bert.model.forward, bert.runner.batch_size
    calls: list[int] = []

    def small_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        x = kwargs.get("inputs_embeds")
        rows = (x if x is not None else kwargs.get("input_ids", args[0] if args else None)).shape[0]
        calls.append(rows)
        if rows > 3 and not torch.is_grad_enabled():  # the no-grad output forward only
            raise torch.OutOfMemoryError("injected: more than 3 rows")
        return original(*args, **kwargs)

    monkeypatch.setattr(bert.model, "forward", small_memory)
    try:
        res = explain.explain(bert, [TEXTS[1]], methods=["ig"], ig=settings, errors="record")
    finally:
        monkeypatch.setattr(bert.model, "forward", original)
        bert.runner.batch_size = batch
        bert.runner.fitted.clear()
    assert not res.failures, res.failures[0].error
    [tight] = res
    assert 4 in calls and max(calls) <= 4  # it ran out at 4 rows and went on with 2
    np.testing.assert_allclose(tight.scores, free.scores, rtol=1e-5, atol=1e-7)
    assert tight.checks == pytest.approx(free.checks, rel=1e-6)  # the same f(x), f(baseline) and noisy changes
    assert tight.rows == free.rows  # the forward that ran out is not counted


def test_fixed_steps_are_not_capped_by_max_steps(bert) -> None:  # type: ignore[no-untyped-def]
    """max_steps bounds the adaptive refinement; a fixed rule runs the n_steps asked for."""
    [e] = explain.explain(bert, [TEXTS[0]], methods=["ig"], ig={"baseline": "pad", "adaptive": False, "n_steps": 6, "max_steps": 4})
    assert e.settings["n_steps"] == 6 and e.rows == 6 + 2
    res = explain.explain(bert, [TEXTS[0]], methods=["ig"], ig={"baseline": "pad", "n_steps": 6, "max_steps": 4}, errors="record")
    assert not list(res) and "n_steps <= max_steps" in res.failures[0].error


def test_out_of_memory_at_one_row_is_a_one_line_error(bert, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def no_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("injected")

    from captum.attr import IntegratedGradients

    from explain.execution.runner import Runner

    monkeypatch.setattr(bert.model, "forward", no_memory)
    runner = Runner(torch.device("cpu"), batch_size=4)

    def forward(t: torch.Tensor) -> torch.Tensor:
        runner.count(t.shape[0])
        return bert.model(inputs_embeds=t).logits[:, 0]

    x = torch.zeros(1, 3, 5)
    path = PathSum(IntegratedGradients(forward), x, x, runner, 4)
    with pytest.raises(explain.ExplainError, match="out of memory in integrated gradients"):
        path.weighted([0.5, 1.0], [1.0, 1.0])
    assert runner.rows == 0
