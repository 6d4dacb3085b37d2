"""Attention rollout and relevance against direct references, on the rows that answer.

References, written here from the papers and fed by the Hugging Face model called directly
(eager attention, float64 numpy):
- rollout: Abnar & Zuidema 2020 (arXiv 2005.00928): 0.5 A + 0.5 I, row-normalised, head mean,
  multiplied through the layers;
- relevance: Chefer, Gur & Wolf 2021 (arXiv 2103.15679): R = I; R += mean_h((dy/dA * A)^+) R.
Tolerance: maps and rollout 1e-5 absolute (they are probabilities); relevance 1e-4 of the
reference's largest magnitude (float32 method, float64 reference; a saturated classifier's
relevance is ~1e-6 in absolute terms). A wrong row, a missing clamp, or a one-row reading of the
whole continuation differs by more than 10% of that magnitude (asserted, so the checks can fail).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import explain
import explain.methods.attention as attention_method
from explain.adapters.answer_row import answer_rows, classifier_row, is_causal, last_non_pad

from conftest import MODELS

ATOL = 1e-5
REL = 1e-4
WORDS = "the a movie film was is plot acting good bad great awful very not and".split()
RECORD: dict[str, Any] = {"errors": "record"} if "errors" in inspect.signature(explain.explain).parameters else {}


# ---- references ----------------------------------------------------------------------------
def assert_close_rel(actual: Any, ref: Any) -> None:
    """Assert |actual - ref| <= 1e-4 of max |ref| everywhere (relevance is in gradient units)."""
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.abs(ref).max())
    assert scale > 0
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), ref, atol=REL * scale, rtol=0)


def far_apart(a: Any, ref: Any) -> bool:
    """Return True when a differs from ref by more than 10% of max |ref| somewhere."""
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.abs(np.asarray(a) - ref).max()) > 0.1 * float(np.abs(ref).max())


def ref_rollout(att: list[np.ndarray]) -> np.ndarray:
    """Abnar & Zuidema's rollout (T, T) from per-layer (H, T, T) maps, first layer first."""
    t = att[0].shape[-1]
    out = np.eye(t)
    for a in att:
        m = 0.5 * a.mean(0) + 0.5 * np.eye(t)
        m = m / m.sum(-1, keepdims=True)
        out = m @ out
    return out


def ref_relevance_row(att: list[np.ndarray], grads: list[np.ndarray], row: int) -> np.ndarray:
    """Row `row` of Chefer et al. (2103.15679) relevance, identity removed, from (H, T, T) maps and gradients."""
    t = att[0].shape[-1]
    r = np.eye(t)
    for a, g in zip(att, grads):
        r = r + np.maximum(g * a, 0.0).mean(0) @ r
    return (r - np.eye(t))[row]


def direct_pass(model: Any, ids: list[int]) -> tuple[Any, list[torch.Tensor]]:
    """Return (HF output, attentions) of one eager forward with gradients, as the model gives them."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.enable_grad():
            out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                        output_attentions=True, output_hidden_states=True)
    finally:
        model.set_attn_implementation(before)
    return out, list(out.attentions)


def numpy_maps(att: list[torch.Tensor], output: torch.Tensor) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return per-layer (H, T, T) maps and the gradients of `output` with respect to them, in float64."""
    grads = torch.autograd.grad(output, att, retain_graph=True)
    return [a[0].detach().double().numpy() for a in att], [g[0].double().numpy() for g in grads]


# ---- decoder-only classifiers built here -----------------------------------------------------
def word_tokenizer() -> Any:
    """A WordLevel tokenizer with a pad token, wrapped for transformers (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", model_max_length=32)


def decoder_classifier(kind: str) -> Any:
    """A random GPT-2 or Llama sequence classifier (wide initialisation, so every word matters)."""
    import transformers

    torch.manual_seed(0)
    n = len(WORDS) + 2
    labels: dict[str, Any] = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=n, n_positions=32, n_embd=32, n_layer=2, n_head=4, initializer_range=0.3,
                                      pad_token_id=0, **labels)
        return transformers.GPT2ForSequenceClassification(cfg).eval()
    cfg = transformers.LlamaConfig(vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=32, initializer_range=0.3, pad_token_id=0, **labels)
    return transformers.LlamaForSequenceClassification(cfg).eval()


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def decoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """GPT-2 through explain.from_model, Llama saved and read back with explain.load."""
    model, tok = decoder_classifier(request.param), word_tokenizer()
    if request.param == "gpt2":
        return explain.from_model(model, tok, device="cpu")
    folder = tmp_path_factory.mktemp("llama-cls")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return explain.load(folder, device="cpu")


def pooled_rows(model: Any, ids: list[int], label: int) -> list[int]:
    """Return the positions whose final hidden state the class logit depends on (the model's own answer rows)."""
    out, _ = direct_pass(model, ids)
    (g,) = torch.autograd.grad(out.logits[0, label], out.hidden_states[-1])
    return [t for t in range(len(ids)) if float(g[0, t].abs().max()) > 0]


@pytest.mark.parametrize("text", ["the movie was very good", "not a good film [PAD]"])
def test_decoder_classifier_answers_from_the_last_non_pad_token(decoder: Any, text: str) -> None:
    [e] = explain.explain(decoder, [text], methods=["attention"])
    ids = list(decoder.prepare(text, 0).state.ids)
    row = e.extras["answer_row"]
    assert pooled_rows(decoder.model, ids, e.target.index) == [row]  # the model reads that row and only it
    assert row == (len(ids) - 2 if text.endswith("[PAD]") else len(ids) - 1)
    assert e.extras["answer_rows"] == [row] and e.extras["query"] == row
    # relevance equals the paper's rule read at that row; row 0 (the old reading) gave zeros
    out, att = direct_pass(decoder.model, ids)
    a, g = numpy_maps(att, torch.softmax(out.logits[0].float(), -1)[e.target.index])
    ref = ref_relevance_row(a, g, row)
    assert_close_rel(e.extras["token_relevance"], ref)
    n = len(e.features)
    assert_close_rel(e.scores, ref[:n])  # one token per word, no special tokens
    assert np.count_nonzero(np.abs(e.scores[1:]) > 1e-4) >= 1  # words after the first get relevance (row 0 gave none)
    assert e.extras["answer_rule"] == "last non-pad"


def test_answer_row_rules() -> None:
    class Cfg:
        pad_token_id = 0
        summary_type = "cls_index"  # GPT-2's config carries it; its sequence classifier ignores it

    assert classifier_row(Cfg(), [5, 6, 0, 7, 0, 0], causal=True) == 3  # rightmost non-pad, as transformers pools
    assert classifier_row(Cfg(), [5, 6, 7], causal=False) == 0  # [CLS]
    assert last_non_pad([5, 6], None) == 1 and last_non_pad([0, 0], 0) == 0
    causal = torch.tril(torch.rand(1, 2, 4, 4))
    assert is_causal([causal]) and not is_causal([causal + 0.01]) and not is_causal([torch.ones(1, 1, 1, 1)])


# ---- bundled BERT and GPT ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bert(sentiment_bert: Path) -> Any:
    return explain.load(sentiment_bert, device="cpu")


@pytest.fixture(scope="module")
def gpt() -> Any:
    path = MODELS / "planted-gpt2"
    if not (path / "model.safetensors").exists():
        pytest.skip("bundled model examples/models/planted-gpt2 is missing (run examples/train_gpt.py)")
    return explain.load(path, device="cpu")


def test_bert_rollout_and_relevance_equal_the_references(bert: Any) -> None:
    text = "the acting was awful but the plot was great"
    [e] = explain.explain(bert, [text], methods=["attention"])
    ex = bert.prepare(text, 0)
    ids = list(ex.state.ids)
    out, att = direct_pass(bert.model, ids)
    a, g = numpy_maps(att, torch.softmax(out.logits[0].float(), -1)[e.target.index])
    assert e.extras["answer_row"] == 0 and e.extras["answer_token"] == ["[CLS]"] and e.extras["answer_rule"] == "first"
    np.testing.assert_allclose(e.extras["token_attention"], np.stack(a), atol=ATOL)
    roll = ref_rollout(a)
    np.testing.assert_allclose(e.extras["token_rollout"], roll, atol=ATOL)
    assert far_apart(e.extras["token_rollout"], ref_rollout([x[:1] for x in a]))  # one head is not the head mean
    ref = ref_relevance_row(a, g, 0)
    assert_close_rel(e.extras["token_relevance"], ref)
    groups = [list(t) for t in ex.state.word_tokens]
    assert_close_rel(e.scores, [ref[p].sum() for p in groups])
    unclamped = [(gg * aa).mean(0) for aa, gg in zip(a, g)]  # a broken rule (no clamp) is far off
    r = np.eye(len(ids))
    for c in unclamped:
        r = r + c @ r
    assert far_apart((r - np.eye(len(ids)))[0], ref)
    # every layer x head at word level, and the answering row the word matrices cannot show
    L, H = len(a), a[0].shape[0]
    assert e.extras["attention"].shape == (L, H, len(e.features), len(e.features))
    assert e.extras["heads"] == e.extras["feature_heads"] == "all"
    answer = np.stack(a)[:, :, 0, :]  # (L, H, T)
    np.testing.assert_allclose(e.extras["answer_attention"], np.stack([answer[..., p].sum(-1) for p in groups], -1), atol=ATOL)
    np.testing.assert_allclose(e.extras["answer_rollout"], [roll[0, p].sum() for p in groups], atol=ATOL)


def lm_reference(gpt: Any, ex: Any, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Return (sum of each generated token's own relevance row, the one-row reading of the summed output's relevance)."""
    ids = list(ex.state.ids)
    out, att = direct_pass(gpt.model, ids)
    logp = torch.log_softmax(out.logits[0].float(), -1)
    total = np.zeros(len(ids))
    for q in rows:
        a, g = numpy_maps(att, logp[q, ids[q + 1]])
        total += ref_relevance_row(a, g, q)
    a, g = numpy_maps(att, sum(logp[q, ids[q + 1]] for q in rows))
    return total, ref_relevance_row(a, g, rows[0])


def test_gpt_rollout_and_per_token_relevance(gpt: Any) -> None:
    prompt = "the cat says"
    res = explain.explain(gpt, [prompt], methods=["attention"], max_new_tokens=3, granularity="token")
    ex = gpt.prepare(prompt, 0, max_new_tokens=3)
    ids = list(ex.state.ids)
    n_prompt = ex.state.n_prompt
    out, att = direct_pass(gpt.model, ids)
    a = [x[0].detach().double().numpy() for x in att]
    for e in res:
        np.testing.assert_allclose(e.extras["token_rollout"], ref_rollout(a), atol=ATOL)
        if e.target.position is None:
            continue
        q = e.target.position - 1  # the row whose logits predict the token
        assert e.extras["answer_rows"] == [q]
        ref, _ = lm_reference(gpt, ex, [q])
        assert_close_rel(e.extras["token_relevance"], ref)
        positions = [t for t in range(q + 1) if not ex.state.tok.special[t]]
        assert_close_rel(e.scores, ref[positions])
    assert len(ids) - n_prompt == 3


def test_whole_continuation_sums_every_generated_tokens_relevance(gpt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = "the dog says"
    [e] = explain.explain(gpt, [prompt], methods=["attention"], max_new_tokens=3, target="sum", granularity="token")
    ex = gpt.prepare(prompt, 0, max_new_tokens=3)
    n_prompt, n = ex.state.n_prompt, len(ex.state.ids)
    rows = list(range(n_prompt - 1, n - 1))
    assert e.target.position is None and e.extras["answer_rows"] == rows and e.extras["relevance_split"] == "split logits"
    ref, one_row = lm_reference(gpt, ex, rows)
    assert_close_rel(e.extras["token_relevance"], ref)
    positions = [t for t in range(n_prompt) if not ex.state.tok.special[t]]
    assert_close_rel(e.scores, ref[positions])
    assert far_apart(one_row[positions], ref[positions])  # the old one-row reading is caught
    # a model whose pass does not give every row's logits: one view per token, same numbers
    monkeypatch.setattr(attention_method, "_split_outputs", lambda *args: None)
    [f] = explain.explain(gpt, [prompt], methods=["attention"], max_new_tokens=3, target="sum", granularity="token")
    assert f.extras["relevance_split"] == "step views"
    assert_close_rel(f.scores, e.scores)


# ---- out of memory ------------------------------------------------------------------------------
def failing_above(limit: int, seen: list[int]) -> Callable[..., torch.Tensor]:
    """Wrap the relevance pass so that chunks above `limit` outputs raise an (injected) OOM."""
    real = attention_method._relevance_rows

    def fake(att_list: Any, outputs: Any, rows: Any, chunk: int) -> torch.Tensor:
        seen.append(min(chunk, len(rows)))
        if min(chunk, len(rows)) > limit:
            raise torch.OutOfMemoryError("injected")
        return real(att_list, outputs, rows, chunk)

    return fake


def test_out_of_memory_halves_the_gradient_chunk(gpt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = {"prompt": "the cow says", "continuation": " moo and the cat says meow"}
    [ok] = explain.explain(gpt, [raw], methods=["attention"], target="sum")
    n = len(ok.extras["answer_rows"])
    assert n >= 4
    seen: list[int] = []
    monkeypatch.setattr(attention_method, "_relevance_rows", failing_above(n // 2, seen))
    [e] = explain.explain(gpt, [raw], methods=["attention"], target="sum")
    assert seen == [n, n // 2]  # all n gradients in one backward ran out; n // 2 per backward went on
    assert_close_rel(e.scores, ok.scores)
    assert e.rows == ok.rows  # the pass that ran out is taken back, not counted twice


def test_out_of_memory_on_one_row_fails_that_input_alone(bert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = attention_method._relevance_rows
    calls: list[int] = []

    def first_fails(*args: Any) -> torch.Tensor:
        calls.append(args[-1])
        if len(calls) == 1:
            raise torch.OutOfMemoryError("injected")
        return real(*args)

    monkeypatch.setattr(attention_method, "_relevance_rows", first_fails)
    res = explain.explain(bert, ["a great film", "an awful film"], methods=["attention"], **RECORD)
    assert calls == [1, 1]  # a classifier has one output: nothing to halve, no retry at size 1
    assert [x.input for x in res] == [1]
    [failure] = res.failures
    assert failure.input == 0 and "out of memory in the attention capture pass" in failure.error
    assert "\n" not in failure.error.strip()


# ---- own models: the rule they state --------------------------------------------------------------
def test_answer_rule_values_are_checked() -> None:
    from explain.adapters.answer_row import check_rule
    from explain.errors import CheckpointError

    assert check_rule(None) is None and check_rule("Mean") == "mean" and check_rule("last") == "last"
    with pytest.raises(CheckpointError, match="use one of first, last, mean"):
        check_rule("middle")
