"""Causal LMs (GPT-2 byte-level BPE, Llama SentencePiece-style): each generated token explained in turn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from explain.adapters.causal_lm import CausalLMAdapter
from explain.errors import InputError, MethodError, TargetError

CORPUS = [
    "the cat says meow and the dog says woof",
    "a big cow says moo in the barn at night",
    "the unbelievable owl says hoot near the quiet river",
    "one little duck says quack by the pond",
] * 3
PROMPT = "the unbelievable cat says"
EOS = "<|endoftext|>"


def _merges(doc: dict) -> list[tuple[str, str]]:
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in doc["model"]["merges"]]  # type: ignore[misc]


def save_gpt2(folder: Path) -> Path:
    """Save a random GPT-2 with a byte-level BPE tokenizer trained here (no hub download)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=[EOS], show_progress=False)
    tok = GPT2TokenizerFast(
        vocab=bpe.get_vocab(), merges=_merges(json.loads(bpe.to_str())), bos_token=EOS, eos_token=EOS, unk_token=EOS, model_max_length=48
    )
    torch.manual_seed(0)
    # A wide initialisation makes the random model far from linear, so IG has real work to do.
    cfg = GPT2Config(vocab_size=len(tok), n_positions=48, n_embd=32, n_layer=2, n_head=4, initializer_range=0.3, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_llama(folder: Path) -> Path:
    """Save a random Llama with a SentencePiece-style (Metaspace BPE) tokenizer trained here."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizerFast

    sp = Tokenizer(models.BPE(unk_token="<unk>"))
    sp.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    # A small vocabulary, so long words ("unbelievable") stay several pieces.
    sp.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    tok = LlamaTokenizerFast(vocab=sp.get_vocab(), merges=_merges(json.loads(sp.to_str())), add_bos_token=True, model_max_length=48)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=48, initializer_range=0.3, bos_token_id=1, eos_token_id=2,
    )
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CausalLMAdapter:
    folder = tmp_path_factory.mktemp(request.param)
    (save_gpt2 if request.param == "gpt2" else save_llama)(folder)
    m = explain.load(folder, device="cpu")
    assert isinstance(m, CausalLMAdapter) and m.family == "causal-lm"
    return m


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> CausalLMAdapter:
    m = explain.load(save_gpt2(tmp_path_factory.mktemp("gpt2-only")), device="cpu")
    assert isinstance(m, CausalLMAdapter)
    return m


@pytest.fixture(scope="module")
def run(lm: CausalLMAdapter) -> explain.Results:
    """ig, shap and lime at their default settings over one prompt and three generated tokens."""
    return explain.explain(lm, [PROMPT], methods=["ig", "shap", "lime"], max_new_tokens=3)


def direct_logprobs(lm: CausalLMAdapter, ids: list[int], n: int) -> np.ndarray:
    """Return log p(token | all before it) of the last n tokens of ids, from one plain forward."""
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    return np.array([float(logp[t - 1, ids[t]]) for t in range(len(ids) - n, len(ids))])


def sequence_ids(lm: CausalLMAdapter, res: explain.Results) -> list[int]:
    """Return the prompt's ids + the explained tokens' ids (a generated text need not re-tokenise to them)."""
    steps = res.by_method("ig")[:-1]
    return list(lm.tokenizer(res.inputs[0].text)["input_ids"]) + [e.target.index for e in steps]


# ---- one explanation per generated token, in order, then the whole continuation ---------------
def test_one_explanation_per_token_then_the_whole_continuation(lm: CausalLMAdapter, run: explain.Results) -> None:
    assert not run.failures
    record = run.inputs[0]
    assert record.kind == "prompt" and record.text == PROMPT
    n_prompt = len(lm.tokenizer(PROMPT)["input_ids"])
    for method in ("ig", "shap", "lime"):
        exps = run.by_method(method)
        steps, whole = exps[:-1], exps[-1]
        assert 1 <= len(steps) <= 3
        assert [e.target.position for e in steps] == list(range(n_prompt, n_prompt + len(steps)))
        assert whole.target.index == -1 and whole.target.position is None
        assert whole.target.label == record.continuation == "".join(e.target.label for e in steps)
        assert np.isclose(whole.target.probability, np.prod([e.target.probability for e in steps]), rtol=1e-6)
        assert record.prediction == steps[0].target
    assert [e.method for e in run] == ["ig"] * (len(run) // 3) + ["shap"] * (len(run) // 3) + ["lime"] * (len(run) // 3)


def test_features_are_the_context_words(lm: CausalLMAdapter, run: explain.Results) -> None:
    prompt_words = ("the", "unbelievable", "cat", "says")
    for method in ("ig", "shap", "lime"):
        exps = run.by_method(method)
        assert exps[0].features == prompt_words and exps[-1].features == prompt_words
        # each later token also sees the words generated before it, nothing after it
        for k, e in enumerate(exps[:-1]):
            generated = "".join(x.target.label for x in exps[:k])
            assert " ".join(e.features) == " ".join((PROMPT + generated).split()), (method, k)
            assert e.scores.shape == (len(e.features),) and np.isfinite(e.scores).all()
    unbelievable = run.by_method("ig")[0].extras["feature_tokens"][1]
    assert len(unbelievable) > 1  # a multi-piece word is one feature


def test_target_logprobs_equal_a_direct_forward(lm: CausalLMAdapter, run: explain.Results) -> None:
    exps = run.by_method("ig")
    ids = sequence_ids(lm, run)
    direct = direct_logprobs(lm, ids, len(exps) - 1)
    ours = np.log([e.target.probability for e in exps[:-1]])
    assert np.allclose(ours, direct, atol=1e-6)
    assert [e.target.index for e in exps[:-1]] == ids[len(ids) - len(direct) :]
    assert np.isclose(np.log(exps[-1].target.probability), direct.sum(), atol=1e-6)


def test_every_view_outputs_the_target_logprob(lm: CausalLMAdapter) -> None:
    example = lm.prepare(PROMPT, 0, max_new_tokens=3)
    ids = list(example.state.ids)
    targets = lm.targets(example)
    direct = direct_logprobs(lm, ids, len(targets) - 1)
    expected = [*direct, direct.sum()]
    for t, want in zip(targets, expected):
        g = lm.gradient_view(example, t)
        assert g.output == "log-probability"
        with torch.no_grad():
            assert np.isclose(float(g.forward(g.inputs)[0]), want, atol=1e-4)
        p = lm.perturbation_view(example, t)
        assert p.mask == lm.default_baseline and p.output == "log-probability"
        assert np.isclose(p.evaluate(np.ones((1, len(p.features)), bool))[0], want, atol=1e-5)
        assert np.isclose(lm.perturbation_view(example, t, output="probability").evaluate(np.ones((1, len(p.features)), bool))[0], np.exp(want), rtol=1e-4)


def test_greedy_tokens_are_the_argmax(lm: CausalLMAdapter, run: explain.Results) -> None:
    ids = sequence_ids(lm, run)
    n = len(run.by_method("ig")) - 1
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0]
    assert [int(logits[t - 1].argmax()) for t in range(len(ids) - n, len(ids))] == ids[len(ids) - n :]


# ---- axioms --------------------------------------------------------------------------------
def test_ig_completeness_at_defaults(lm: CausalLMAdapter, run: explain.Results) -> None:
    for e in run.by_method("ig"):
        assert e.settings["baseline"] == "eos" and e.settings["output"] == "log-probability"
        assert e.checks["delta_relative"] < 0.01, e.target
        assert abs(e.checks["output_change"]) > 1e-3  # a real change was explained
        assert np.isclose(e.scores.sum(), e.checks["output_change"], atol=abs(e.checks["output_change"]) * 0.01)


def test_shap_efficiency_and_base_value_is_the_empty_context(lm: CausalLMAdapter, run: explain.Results) -> None:
    example = lm.prepare(PROMPT, 0, max_new_tokens=3)  # greedy again: the same tokens
    for e in run.by_method("shap"):
        assert [c.name for c in e.self_checks] == ["stability", "evidence"] and e.reliable  # few words: exact
        view = lm.perturbation_view(example, e.target)
        assert np.isclose(e.checks["base_value"], view.evaluate(np.zeros((1, len(e.features)), bool))[0], atol=1e-5)


# ---- batching and padding ------------------------------------------------------------------
def test_batching_and_padding_do_not_change_logprobs(lm: CausalLMAdapter) -> None:
    example = lm.prepare(PROMPT, 0, max_new_tokens=2)
    target = lm.targets(example, 1)[0]  # second token: its context holds a generated word
    d = len(lm.perturbation_view(example, target, baseline="drop").features)
    masks = np.array([[(i >> j) & 1 for j in range(d)] for i in range(2**d)], dtype=bool)  # rows of every length
    together = lm.perturbation_view(example, target, baseline="drop").evaluate(masks)
    ids = list(example.state.ids[: target.position])
    groups = lm.perturbation_view(example, target).extras["feature_tokens"]
    assert len(groups) == d
    for i in np.random.default_rng(0).choice(len(masks), 8, replace=False):
        keep, value = masks[i], together[i]
        fresh = lm.prepare(PROMPT, 0, max_new_tokens=2)  # an empty cache: this row scored alone
        alone = lm.perturbation_view(fresh, target, baseline="drop").evaluate(keep[None])[0]
        assert np.isclose(value, alone, atol=2e-5)
        # and by hand: the kept words' tokens (special ones always kept), one unpadded forward
        units = lm.units(example.state, target.position, "word").tokens
        kept = [t for t in range(len(ids)) if example.state.tok.special[t] or any(keep[u] and t in units[u] for u in range(d))]
        row = [ids[t] for t in kept] or [lm.scorer.start_id]
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([row])).logits[0, -1].double(), -1)
        assert np.isclose(value, float(logp[target.index]), atol=2e-5)


def test_one_forward_serves_every_later_token_and_the_whole_continuation(lm: CausalLMAdapter) -> None:
    example = lm.prepare(PROMPT, 0, max_new_tokens=3)
    targets = lm.targets(example)
    first, whole = targets[0], targets[-1]
    d = len(lm.perturbation_view(example, first).features)
    masks = np.random.default_rng(0).random((20, d)) < 0.5
    lm.perturbation_view(example, first).evaluate(masks)
    rows = lm.runner.rows
    lm.perturbation_view(example, whole).evaluate(masks)  # same prompt masks: already scored
    assert lm.runner.rows == rows


# ---- targets, forced continuations, errors -------------------------------------------------
def test_target_specs(lm: CausalLMAdapter) -> None:
    example = lm.prepare(PROMPT, 0, continuation=" says moo")
    every = lm.targets(example)
    assert [t.label for t in every] == [t.label for t in every[:-1]] + [" says moo"]
    n = len(every) - 1
    assert lm.targets(example, 0) == [every[0]]
    assert lm.targets(example, "step:1") == [every[1]]
    with pytest.raises(TargetError, match="step:1"):  # a digit string is token text, never a step number
        lm.targets(example, "1")
    assert lm.targets(example, -1) == [every[n - 1]]
    assert lm.targets(example, "sum") == [every[-1]]
    assert lm.targets(example, "steps") == every[:-1]
    assert lm.targets(example, "all") == every
    assert lm.targets(example, [1, 0, 1]) == [every[1], every[0]]
    assert lm.targets(example, "says") == [every[0]]
    with pytest.raises(TargetError, match="out of range"):
        lm.targets(example, 9)
    with pytest.raises(TargetError, match="no continuation token has that text"):
        lm.targets(example, "zebra")
    with pytest.raises(TargetError):
        explain.explain(lm, [PROMPT], methods=["ig"], target=2.5)
    res = explain.explain(lm, [PROMPT], methods=["ig"], target="zebra", max_new_tokens=2, errors="record")
    assert len(res) == 0 and "zebra" in res.failures[0].error


def test_forced_continuation(lm: CausalLMAdapter) -> None:
    res = explain.explain(lm, [PROMPT, {"prompt": "a big cow says", "continuation": " moo in"}], methods=["ig"], continuation=" meow and")
    assert not res.failures
    assert [r.continuation for r in res.inputs] == [" meow and", " moo in"]
    for i, text in enumerate([" meow and", " moo in"]):
        exps = res.for_input(i)
        assert "".join(e.target.label for e in exps[:-1]) == text and exps[-1].target.label == text
    ids = list(lm.prepare("a big cow says", 0, continuation=" moo in").state.ids)
    assert ids == list(lm.tokenizer("a big cow says moo in")["input_ids"])
    direct = direct_logprobs(lm, ids, len(res.for_input(1)) - 1)
    assert np.allclose(np.log([e.target.probability for e in res.for_input(1)[: len(direct)]]), direct, atol=1e-6)


def test_a_continuation_can_finish_the_prompts_last_word(gpt2: CausalLMAdapter) -> None:
    example = gpt2.prepare("the unbeliev", 0, continuation="able cat")
    targets = gpt2.targets(example)
    assert "".join(t.label for t in targets[:-1]) == "able cat"
    cat = [t for t in targets[:-1] if t.label.startswith(" ")][0]  # " cat"'s first piece
    assert gpt2.perturbation_view(example, cat).features == ("the", "unbelievable")
    # a token inside the word sees only the word's pieces before it
    inside = [t for t in targets[:-1] if not t.label.startswith(" ")][0]
    assert gpt2.perturbation_view(example, inside).features[-1].startswith("unbeliev")


@pytest.mark.parametrize(
    "raw, options, message",
    [
        ("   ", {}, "the prompt is empty"),
        (42, {}, "expected a prompt text"),
        ({"text": "hi"}, {}, "needs a 'prompt'"),
        (PROMPT, {"max_new_tokens": 0}, "generate at least 1 token"),
        ({"prompt": PROMPT, "continuation": ""}, {}, "non-empty text"),
        (" ".join(["cat"] * 60), {"truncate": False}, "the model maximum is 48"),
        (PROMPT, {"continuation": " cat" * 50}, "exceed the model maximum of 48"),
        (PROMPT, {"continuation": " cat" * 50, "truncate": False}, "exceed the model maximum of 48"),
    ],
)
def test_input_errors_are_one_line_input_errors(gpt2: CausalLMAdapter, raw: object, options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        gpt2.prepare(raw, 3, **options)
    assert "\n" not in str(info.value) and str(info.value).startswith("input 3")


def test_a_prompt_too_long_loses_its_first_words(gpt2: CausalLMAdapter) -> None:
    """By default (--long-inputs truncate) a prompt over the model maximum keeps its last whole
    words, the context nearest the continuation, with room for it; the note says so."""
    words = [f"{w}" for w in ("the cat sat on a mat and the dog says moo " * 8).split()]
    prompt = " ".join(words)
    example = gpt2.prepare(prompt, 0, max_new_tokens=4)
    kept = example.record.text
    assert prompt.endswith(" " + kept) and len(kept.split()) < len(words)
    assert len(example.state.continuation) + len(gpt2.tokenizer(kept)["input_ids"]) <= 48
    assert "prompt tokens (model maximum 48): its first words were cut" in (example.record.note or "")
    assert example.state.n_prompt <= 48 - 4  # room for every generated token
    given = gpt2.prepare({"prompt": prompt, "continuation": " moo moo"}, 0)
    assert prompt.endswith(given.record.text) and given.record.continuation == " moo moo"
    res = explain.explain(gpt2, [prompt], methods=["ig"], max_new_tokens=2)
    assert res.inputs[0].note and "first words were cut" in res.inputs[0].note and res[0].reliable
    assert res[0].features[-1] == words[-1] or res[0].features[-1].startswith(words[-1])


def test_a_bad_prompt_fails_alone(gpt2: CausalLMAdapter) -> None:
    res = explain.explain(gpt2, [PROMPT, "", "a big cow says"], methods=["ig"], max_new_tokens=1, errors="record")
    assert sorted({e.input for e in res}) == [0, 2]
    assert len(res.failures) == 1 and res.failures[0].input == 1


def test_generation_stops_within_the_model_maximum(gpt2: CausalLMAdapter) -> None:
    words = ["says"]
    while len(gpt2.tokenizer(" ".join(words))["input_ids"]) < 45:
        words.append("says")
    prompt = " ".join(words)
    assert len(gpt2.tokenizer(prompt)["input_ids"]) == 45
    example = gpt2.prepare(prompt, 0, max_new_tokens=8)
    cont = example.state.continuation
    assert 1 <= len(cont) <= 3
    if len(cont) == 3:  # not stopped early by an end-of-text token
        assert "generated 3 of 8 tokens: the model maximum is 48" in (example.record.note or "")


# ---- options -------------------------------------------------------------------------------
@pytest.mark.parametrize("baseline", ["zero", "eos"])
def test_ig_baselines(gpt2: CausalLMAdapter, baseline: str) -> None:
    [e] = explain.explain(gpt2, [PROMPT], methods=["ig"], target=0, ig={"baseline": baseline})
    assert e.settings["baseline"] == baseline and np.isfinite(e.scores).all()


def test_ig_pad_baseline_needs_a_pad_token(gpt2: CausalLMAdapter) -> None:
    with pytest.raises(MethodError, match="no pad token"):  # refused before any model call, naming the others
        explain.explain(gpt2, [PROMPT], methods=["ig"], target=0, ig={"baseline": "pad"})


@pytest.mark.parametrize("key", ["baseline", "mask"])  # `mask`: the setting's old name, still read
@pytest.mark.parametrize("mask", ["drop", "eos", "unk"])
def test_perturbation_masks(gpt2: CausalLMAdapter, mask: str, key: str) -> None:
    [e] = explain.explain(gpt2, [PROMPT], methods=["shap"], target=0, shap={key: mask, "max_evals": 100})
    assert e.settings["baseline"] == mask and "mask" not in e.settings
    # the base value is the output with every word removed *by that mask*
    example = gpt2.prepare(PROMPT, 0)
    view = gpt2.perturbation_view(example, e.target, mask=mask)
    assert np.isclose(e.checks["base_value"], view.evaluate(np.zeros((1, len(e.features)), bool))[0], atol=1e-5)


@pytest.mark.parametrize("output", ["probability", "logit", "log-probability"])
def test_outputs(gpt2: CausalLMAdapter, output: str) -> None:
    res = explain.explain(gpt2, [PROMPT], methods=["ig", "shap"], target=[0, "sum"], max_new_tokens=2, ig={"output": output}, shap={"output": output, "max_evals": 100})
    assert {e.settings["output"] for e in res} == {output}
    for e in res.by_method("ig"):
        assert e.checks["delta_relative"] < 0.01


def test_token_granularity(lm: CausalLMAdapter) -> None:
    res = explain.explain(lm, [PROMPT], methods=["ig", "lime"], target=0, granularity="token", lime={"num_samples": 300})
    words = explain.explain(lm, [PROMPT], methods=["ig"], target=0)[0]
    ig = res.by_method("ig")[0]
    assert len(ig.features) > len(words.features)
    assert np.isclose(ig.scores.sum(), words.scores.sum(), atol=1e-5)
    assert res.by_method("lime")[0].features == ig.features


def test_attention_and_ablation(lm: CausalLMAdapter) -> None:
    before = lm.model.config._attn_implementation
    res = explain.explain(lm, [PROMPT], methods=["attention", "ablation"], max_new_tokens=2)
    assert lm.model.config._attn_implementation == before
    example = lm.prepare(PROMPT, 0, max_new_tokens=2)
    T = len(example.state.ids)
    for e in res.by_method("attention"):
        assert e.extras["token_attention"].shape[-2:] == (T, T)
        assert e.extras["query"] == (e.target.position if e.target.position is not None else example.state.n_prompt) - 1
        assert np.allclose(np.triu(e.extras["token_attention"][0, 0], 1), 0)  # causal
        assert e.scores.shape == (len(e.features),)
    assert len(res.by_method("ablation")) == len(res.by_method("attention"))


# ---- results file --------------------------------------------------------------------------
def test_results_round_trip(lm: CausalLMAdapter, run: explain.Results, tmp_path: Path) -> None:
    path = explain.save(run, tmp_path / "results.json")
    back = explain.open_results(path)
    assert back == run
    assert back.inputs[0].continuation == run.inputs[0].continuation
    assert [e.target for e in back] == [e.target for e in run]


def test_byte_tokens_are_named_by_their_bytes_never_mojibake_or_blank(gpt2: CausalLMAdapter) -> None:
    """A byte-level vocabulary spells "é" as "Ã©" and an emoji as four lone symbols; decoded
    alone or by prefix difference, a byte of an unfinished character is '' or U+FFFD, which
    made empty target labels that --target "" matched. Names are text or <0xNN> bytes."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    from explain.adapters.token_names import _byte_of, readable_tokens

    assert _byte_of() == {c: b for b, c in bytes_to_unicode().items()}
    text = "café 😀 東京"
    ids = gpt2.tokenizer(text)["input_ids"]
    names = readable_tokens(gpt2.tokenizer, gpt2.tokenizer.convert_ids_to_tokens(ids))
    assert not any(c in "".join(names) for c in "ÃðŁæ")  # no mojibake
    rebuilt = b""
    for n in names:  # the names spell the text's bytes back exactly
        body = n[1:] if n.startswith("Ġ") else n
        rebuilt += (b" " if n.startswith("Ġ") else b"") + (bytes([int(body[3:5], 16)]) if body.startswith("<0x") else body.encode())
    assert rebuilt.decode() == text
    res = explain.explain(gpt2, [{"prompt": PROMPT, "continuation": " 😀 東京"}], methods=["ig"], target="steps")
    labels = [e.target.label for e in res]
    assert all(labels) and not any("\ufffd" in l for l in labels), labels
    assert any(l.startswith("<0x") for l in labels)
    token = explain.explain(gpt2, [PROMPT + " café"], methods=["ig"], granularity="token", max_new_tokens=1)[0]
    assert not any(c in "".join(token.features) for c in "ÃðŁæ") and "<0xC3>" in "".join(token.features)
