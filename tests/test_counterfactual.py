"""One counterfactual per run: every method removes a word or a region the same way, and says so.

Each adapter defines its removals (`baselines`, `default_baseline`); IG integrates from the
all-removed input that SHAP, LIME and ablation evaluate for the empty coalition, and every
Explanation records the removal it used. Faithfulness metrics remove features their own,
separately recorded way. The planted-truth hit rates under the defaults are checked by
tests/test_text_planted.py, tests/test_image_planted.py and tests/test_causal_lm_planted.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import explain
from explain.adapters import removal
from explain.adapters.base import Adapter, Example, GradientView, PerturbationView
from explain.errors import ExplainError, MethodError
from explain.metrics import evaluate

from conftest import MODELS

TEXT = "the movie was great and the acting was fun"
PROMPT = "the big old cat sat by the red barn"


@pytest.fixture(scope="module")
def bert(sentiment_bert: Path) -> Any:
    return explain.load(sentiment_bert, device="cpu")


@pytest.fixture(scope="module")
def digits() -> Any:
    path = MODELS / "digits-cnn"
    if not (path / "model.safetensors").exists():
        pytest.skip("bundled model examples/models/digits-cnn is missing (run examples/train_cnn.py)")
    return explain.load(path, device="cpu")


@pytest.fixture(scope="module")
def gpt() -> Any:
    path = MODELS / "planted-gpt2"
    if not (path / "config.json").exists():
        pytest.skip("bundled model examples/models/planted-gpt2 is missing (run examples/train_gpt.py)")
    return explain.load(path, device="cpu")


def digit_image() -> np.ndarray:
    from planted_data import digit_images

    return next(img for img, _, box in digit_images(20, 11, split="heldout") if box is not None)


def views_of(adapter: Adapter, monkeypatch: pytest.MonkeyPatch) -> list[GradientView | PerturbationView]:
    """Record every view the methods ask this adapter for (the views they actually evaluate)."""
    seen: list[GradientView | PerturbationView] = []
    for name in ("gradient_view", "perturbation_view"):
        original: Callable[..., Any] = getattr(adapter, name)

        def spy(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            view = _original(*args, **kwargs)
            seen.append(view)
            return view

        monkeypatch.setattr(adapter, name, spy)
    return seen


def all_removed_output(view: GradientView | PerturbationView) -> float:
    """Return the target output with every feature removed, as this view defines removal."""
    if isinstance(view, GradientView):
        with torch.no_grad():
            return float(view.forward(view.baselines)[0])
    return float(view.evaluate(np.zeros((1, len(view.features)), dtype=bool))[0])


def removal_of(view: GradientView | PerturbationView) -> str:
    return view.baseline if isinstance(view, GradientView) else view.mask


# ---- each adapter names its removals ---------------------------------------------------------
def test_each_family_lists_its_removals_and_one_default(bert: Any, gpt: Any, digits: Any) -> None:
    assert set(bert.baselines) == {"mask", "pad", "drop", "unk"} and bert.default_baseline == "mask"
    # the planted GPT's tokenizer has end-of-text (also its unk and pad) and no mask token
    assert set(gpt.baselines) == {"eos", "pad", "drop", "unk"} and gpt.default_baseline == "eos"
    assert {"blur", "black", "mean", "noise"} <= set(digits.baselines) and digits.default_baseline == "blur"
    for adapter in (bert, gpt, digits):
        for name in adapter.baselines:  # every removal is described for the report and the README
            assert removal.describe(adapter.family, name) != f"features removed by {name!r}"


def test_views_default_to_the_adapter_default(bert: Any, gpt: Any, digits: Any) -> None:
    # Before: text IG removed to [PAD] while SHAP masked; image IG used black while the
    # perturbation views blurred; causal-LM IG used eos while the views dropped words.
    for adapter, raw in ((bert, TEXT), (gpt, PROMPT), (digits, digit_image())):
        ex = adapter.prepare(raw, 0, **({"max_new_tokens": 1} if adapter.family == "causal-lm" else {}))
        t = adapter.targets(ex)[0]
        g, p = adapter.gradient_view(ex, t), adapter.perturbation_view(ex, t)
        assert g.baseline == p.mask == adapter.default_baseline
        assert all_removed_output(g) == pytest.approx(all_removed_output(p), abs=1e-4)


# ---- the removal is real: IG starts where the perturbation methods' empty coalition is --------
@pytest.mark.parametrize("name", ["mask", "pad", "unk"])
def test_text_ig_baseline_is_the_all_removed_row(bert: Any, name: str) -> None:
    ex = bert.prepare(TEXT, 0)
    t = bert.targets(ex)[0]
    g = bert.gradient_view(ex, t, baseline=name)
    p = bert.perturbation_view(ex, t, baseline=name)
    fill = {"mask": bert.tokenizer.mask_token_id, "pad": bert.tokenizer.pad_token_id, "unk": bert.tokenizer.unk_token_id}[name]
    ids = [i if s else fill for i, s in zip(ex.state.ids, ex.state.special)]  # every word's tokens, special kept
    with torch.no_grad():
        want = bert.model.get_input_embeddings()(torch.tensor([ids]))
    assert torch.equal(g.baselines, want)
    direct = bert.predict([ids])[0, t.index]  # the model on that row, through the token-id path
    assert all_removed_output(p) == pytest.approx(direct, abs=1e-6)
    assert all_removed_output(g) == pytest.approx(direct, abs=1e-5)
    assert g.baseline == p.mask == name


def test_causal_lm_ig_baseline_is_the_all_removed_context(gpt: Any) -> None:
    ex = gpt.prepare(PROMPT, 0, max_new_tokens=2)
    for t in gpt.targets(ex):  # each token and the whole continuation
        g, p = gpt.gradient_view(ex, t, baseline="eos"), gpt.perturbation_view(ex, t, baseline="eos")
        eos = gpt.tokenizer.eos_token_id
        ids = [i if s else eos for i, s in zip(ex.state.ids[: g.inputs.shape[1]], ex.state.tok.special)]
        with torch.no_grad():
            assert torch.equal(g.baselines, gpt.model.get_input_embeddings()(torch.tensor([ids])))
        assert all_removed_output(g) == pytest.approx(all_removed_output(p), abs=1e-4)


@pytest.mark.parametrize("name", ["blur", "black", "mean", "noise", "grey"])
def test_image_ig_baseline_is_the_all_removed_image(digits: Any, name: str) -> None:
    ex = digits.prepare(digit_image(), 0)
    t = digits.targets(ex)[0]
    g, p = digits.gradient_view(ex, t, baseline=name), digits.perturbation_view(ex, t, baseline=name)
    assert torch.equal(g.baselines, digits.fill(ex, name))  # the same pixels, not a fresh draw
    assert all_removed_output(g) == pytest.approx(all_removed_output(p), abs=1e-4)
    x = ex.state.pixels
    if name == "mean":
        assert torch.allclose(g.baselines, x.mean(dim=(2, 3), keepdim=True).expand_as(x))
    if name == "black":
        assert float(g.baselines.abs().max()) == 0.0


def test_image_noise_is_one_image_per_input_and_seed(digits: Any) -> None:
    ex = digits.prepare(digit_image(), 0)
    a, b, c = digits.fill(ex, "noise", 1), digits.fill(ex, "noise", 1), digits.fill(ex, "noise", 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    other = digits.prepare(digit_image(), 1)  # another input of the run: its own noise
    assert not torch.equal(digits.fill(other, "noise", 1), a)


# ---- names: `baseline` everywhere, the old `mask` read as an alias ---------------------------
def test_old_option_name_is_an_alias_and_a_conflict_is_refused(bert: Any) -> None:
    ex = bert.prepare(TEXT, 0)
    t = bert.targets(ex)[0]
    keep = np.random.default_rng(0).random((6, len(ex.state.words))) > 0.5
    old, new = bert.perturbation_view(ex, t, mask="unk"), bert.perturbation_view(ex, t, baseline="unk")
    assert old.mask == new.mask == "unk"
    np.testing.assert_array_equal(old.evaluate(keep), new.evaluate(keep))
    assert bert.perturbation_view(ex, t, baseline="unk", mask="unk").mask == "unk"
    with pytest.raises(MethodError, match="old name of 'baseline'"):
        bert.perturbation_view(ex, t, baseline="unk", mask="drop")
    assert removal.used({"mask": "drop"}) == "drop" and removal.used({"baseline": "unk", "mask": None}) == "unk"


def test_ig_cannot_drop_words_and_says_what_it_can(bert: Any, gpt: Any) -> None:
    for adapter, raw in ((bert, TEXT), (gpt, PROMPT)):
        ex = adapter.prepare(raw, 0, **({"max_new_tokens": 1} if adapter.family == "causal-lm" else {}))
        t = adapter.targets(ex)[0]
        with pytest.raises(MethodError, match="IG cannot drop words") as err:
            adapter.gradient_view(ex, t, baseline="drop")
        assert all(b in str(err.value) for b in adapter.baselines if b != "drop")
        dropped = adapter.perturbation_view(ex, t, baseline="drop")
        assert len(dropped.evaluate(np.ones((1, len(dropped.features)), bool))) == 1
        with pytest.raises(MethodError, match="only IG"):
            adapter.perturbation_view(ex, t, baseline="zero")
        with pytest.raises(MethodError):
            adapter.check_baseline("blur")


# ---- through the methods: one removal per run, recorded -------------------------------------
def run_and_check(adapter: Any, raw: Any, methods: list[str], baseline: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> explain.Results:
    seen = views_of(adapter, monkeypatch)
    res = explain.explain(adapter, [raw], methods=methods, baseline=baseline, seed=0, **kw)
    assert not res.failures, res.failures
    assert {e.method for e in res} == set(methods)
    for e in res:  # each Explanation says what removing a feature meant
        assert e.settings["baseline"] == baseline, (e.method, e.settings)
    assert seen and {removal_of(v) for v in seen} == {baseline}
    # ... and meant it: every view's all-removed input scores the same
    outs = [all_removed_output(v) for v in seen]
    assert max(outs) - min(outs) < 1e-4, outs
    return res


def test_text_methods_share_the_run_baseline(bert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    res = run_and_check(bert, TEXT, ["ig", "shap", "lime", "ablation"], "unk", monkeypatch,
                        shap={"max_evals": 200}, lime={"num_samples": 300})
    assert res.run.get("baseline") == "unk"
    ig, shap = res.by_method("ig")[0], res.by_method("shap")[0]
    # IG explains f(x) - f(all removed); SHAP's base value is f(all removed): one counterfactual
    assert ig.checks["output_change"] == pytest.approx(shap.checks["output"] - shap.checks["base_value"], abs=1e-4)


def test_image_methods_share_the_run_baseline(digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    res = run_and_check(digits, digit_image(), ["ig", "shap", "lime", "occlusion"], "mean", monkeypatch,
                        ig={"n_steps": 16, "adaptive": False}, shap={"max_evals": 200}, lime={"num_samples": 200})
    ig, shap = res.by_method("ig")[0], res.by_method("shap")[0]
    assert ig.checks["output_change"] == pytest.approx(shap.checks["output"] - shap.checks["base_value"], abs=1e-4)


def test_every_method_records_the_default_when_nothing_is_set(bert: Any) -> None:
    res = explain.explain(bert, [TEXT], methods=["ig", "shap", "lime", "ablation"], shap={"max_evals": 200}, lime={"num_samples": 300})
    assert {e.method: e.settings["baseline"] for e in res} == dict.fromkeys(("ig", "shap", "lime", "ablation"), "mask")


# ---- faithfulness: its own removal, recorded, and several on request ------------------------
def test_faithfulness_removes_features_its_own_recorded_way(bert: Any) -> None:
    res = explain.explain(bert, [TEXT], methods=["ablation"])  # the method's removal: the default, mask
    one = evaluate(bert, res, metrics=["faithfulness"], removal="drop")
    assert one.run["metrics"]["settings"]["removal"] == "drop" and one[0].extras["faithfulness_removal"] == "drop"
    # the insertion curve starts from nothing: under "drop" that is the text with every word deleted
    ex = bert.prepare(TEXT, 0)
    empty = [i for i, s in zip(ex.state.ids, ex.state.special) if s]
    assert one[0].extras["insertion_curve"][0] == pytest.approx(bert.predict([empty])[0, one[0].target.index], abs=1e-6)

    several = evaluate(bert, res, metrics=["faithfulness"], removals=("mask", "drop"))
    settings, e = several.run["metrics"]["settings"], several[0]
    assert settings["removal"] == "mask" and settings["removals"] == ["mask", "drop"]
    assert e.metrics["deletion_auc"] == e.metrics["deletion_auc@mask"]
    assert e.metrics["deletion_auc@drop"] == pytest.approx(one[0].metrics["deletion_auc"])
    assert set(several.run["metrics"]["faithfulness"]) == {"mask", "drop"}
    assert several.run["metrics"]["faithfulness"]["drop"]["ablation"]["deletion_auc"]["mean"] == pytest.approx(one[0].metrics["deletion_auc"])
    with pytest.raises(ExplainError, match="only IG"):
        evaluate(bert, res, metrics=["faithfulness"], removal="zero")  # refused before any model call


def test_faithfulness_defaults_to_the_run_baseline(bert: Any) -> None:
    res = explain.explain(bert, [TEXT], methods=["ablation"])
    run = explain.Results(list(res), model=res.model, inputs=res.inputs, failures=res.failures, run={**res.run, "baseline": "pad"})
    assert evaluate(bert, run, metrics=["faithfulness"]).run["metrics"]["settings"]["removal"] == "pad"
    ig_only = explain.Results(list(res), model=res.model, inputs=res.inputs, failures=res.failures, run={**res.run, "baseline": "zero"})
    assert evaluate(bert, ig_only, metrics=["faithfulness"]).run["metrics"]["settings"]["removal"] == "mask"


def test_one_units_type_for_every_text_adapter() -> None:
    from explain.adapters import generation, text, words

    assert text.Units is words.Units and generation.Units is words.Units


# ---- a tokenizer with no token to fill removed words with: IG falls back on zero --------------
def no_fill_token_models() -> list[Any]:
    """A GPT-2 classifier and a GPT-2 LM over a word-level tokenizer with no pad, mask, unk or eos token."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "the a big old cat sat by red barn movie was very good".split()
    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, model_max_length=32)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(words), n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=None,
                                  eos_token_id=None, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    cls = transformers.GPT2ForSequenceClassification(cfg).eval()
    lm = transformers.GPT2LMHeadModel(cfg).eval()
    return [explain.from_model(m, tok, device="cpu") for m in (cls, lm)]


def test_ig_defaults_to_zero_when_the_tokenizer_has_no_fill_token() -> None:
    cls, lm = no_fill_token_models()
    for adapter, raw in ((cls, "the movie was very good"), (lm, "the big old cat sat")):
        assert adapter.baselines == ("drop",) and adapter.default_baseline == "drop"
        kw = {"max_new_tokens": 1, "target": 0} if adapter.family == "causal-lm" else {}
        res = explain.explain(adapter, [raw], methods=["ig", "ablation"], **kw)
        assert {e.method: e.settings["baseline"] for e in res} == {"ig": "zero", "ablation": "drop"}
        [ig] = res.by_method("ig")
        assert ig.reliable and abs(ig.checks["output_change"]) > 0  # a real path from zero embeddings
        with pytest.raises(MethodError, match="give IG baseline zero$"):  # the one choice, named
            explain.explain(adapter, [raw], methods=["ig"], ig={"baseline": "drop"}, **kw)
    # dropping every word leaves an empty text, which a classifier cannot score: one clear error
    with pytest.raises(MethodError, match="cannot score an empty text"):
        explain.explain(cls, ["the movie was very good"], methods=["shap"], shap={"max_evals": 40})
