"""The zoo, text classifiers: written as tutorials and courses write them, each through the Python
API (`from_model`) and through `explain pack` + `explain run` as subprocesses. Each answers with
the model's own probabilities (called directly, its head read as written) and its IG equals
captum's LayerIntegratedGradients at the token embedding on the same model, or it is refused in
one line that names the cause.

Before issue 24: one logit gave labels ('0',), p = 1.0 and all-zero scores; softmax outputs were
softmaxed again; a (T, B) model was refused without saying why; nn.EmbeddingBag, an inverted
attention_mask and a learnt [CLS] prepended inside forward failed; inline-softmax attention
asked for a module that does not exist.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.errors import ExplainWarning, MethodError

from zoo_kit import (CLI_IG, IG_SETTINGS, TEXTS, VOCAB, Style, assert_close, bag_ig, build, direct_text, ids_of, one_line,
                     packed, run_folder, text_ig, tokenizer_path)

V = {"vocab_size": len(VOCAB)}
STYLES = [
    Style("one-logit", "texts.py", "OneLogit", "text-classifier", V, kind="binary"),
    Style("squeezed-logit", "texts.py", "SqueezedLogit", "text-classifier", V, kind="binary"),
    Style("softmax-output", "texts.py", "SoftmaxOut", "text-classifier", V, kind="probs"),
    Style("log-softmax-output", "texts.py", "LogSoftmaxOut", "text-classifier", V, kind="logprobs"),
    Style("lstm-packed-sequences", "texts.py", "PackedLSTM", "text-classifier", V),
    Style("mean-pooled", "texts.py", "MeanPooled", "text-classifier", V, answer_row="mean", embedding="tok"),
    Style("transposes-itself", "texts.py", "TransposesItself", "text-classifier", V),
    Style("sequence-first-input", "texts.py", "SequenceFirst", "text-classifier", V, sequence_first=True),
    Style("embedding-bag", "texts.py", "Bag", "text-classifier", V),
    Style("inverted-mask", "texts.py", "InvertedMask", "text-classifier", V),
    Style("learned-cls", "texts.py", "LearnedCLS", "text-classifier", V),
    Style("inline-attention", "texts.py", "InlineAttention", "text-classifier", V, embedding="tok"),
    Style("fp16-weights", "texts.py", "LogSoftmaxOut", "text-classifier", V, kind="logprobs", dtype="float16"),
    Style("bf16-weights", "texts.py", "MeanPooled", "text-classifier", V, embedding="tok", dtype="bfloat16"),
]
FROZEN = Style("frozen-embeddings", "texts.py", "FrozenEmbeddings", "text-classifier", V)


def _style(name: str) -> Style:
    return next(s for s in STYLES if s.name == name)


def _stated(style: Style) -> dict[str, Any]:
    return {k: v for k, v in (("head", style.head), ("answer_row", style.answer_row)) if v}


def _reference(style: Style, text: str, target: int) -> np.ndarray:
    return bag_ig(style, text, target) if style.cls == "Bag" else text_ig(style, text, target)


def _rel(style: Style) -> float:
    return 3e-2 if style.dtype else 1e-4  # fp16 / bf16: the same ops, rounded in another order


@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_api_answers_as_the_model_and_ig_equals_captum(style: Style) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExplainWarning)  # what was assumed is checked in its own tests
        model = explain.from_model(build(style), str(tokenizer_path()), family="text-classifier", device="cpu", **_stated(style))
    res = explain.explain(model, list(TEXTS), methods=["ig", "shap"], ig=IG_SETTINGS, shap={"max_evals": 40})
    assert not res.failures, res.failures
    for i, text in enumerate(TEXTS):
        want = direct_text(style, torch.tensor([ids_of(text)]))[0].detach().numpy()
        assert_close(res.inputs[i].probabilities, want, rel=1e-5 if not style.dtype else 2e-3)
        [ig] = [e for e in res.by_method("ig") if e.input == i]
        assert ig.target.index == int(np.argmax(want))
        assert_close(ig.scores, _reference(style, text, ig.target.index), rel=_rel(style))
        [shap] = [e for e in res.by_method("shap") if e.input == i]
        assert np.isfinite(shap.scores).all() and float(np.abs(shap.scores).max()) > 0


@pytest.mark.slow  # about 6 s a style on an idle 2-core machine: two processes that import torch
@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_cli_pack_and_run_answer_as_the_model(style: Style, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, proc = packed(style)
    assert proc.returncode == 0, proc.stderr
    text = TEXTS[1]
    methods = "ig,shap,attention" if style.answer_row else "ig,shap"
    run = run_folder(folder, tmp_path / "out", "--text", text, "--methods", methods, "--shap-max-evals", "40", *CLI_IG)
    assert run.returncode == 0 and all(line.startswith("explain: warning: ") for line in run.stderr.splitlines()), run.stderr
    res = explain.open_results(tmp_path / "out" / "results.json")
    # a packed fp16 / bf16 state dict loads into the class's float32 weights
    model = build(style) if not style.dtype else None
    want = direct_text(style, torch.tensor([ids_of(text)]))[0].detach().numpy() if model is not None else None
    if want is not None:
        assert_close(res.inputs[0].probabilities, want, rel=1e-5)
        ig = res.by_method("ig")[0]
        assert_close(ig.scores, _reference(style, text, ig.target.index), rel=1e-4)
    else:
        assert len(res.by_method("ig")) == 1 and not res.failures
    if style.answer_row:  # stated with explain pack --answer-row
        assert res.by_method("attention")[0].extras["answer_rule"] == style.answer_row


def test_one_logit_reads_as_binary_and_says_so() -> None:
    style = _style("one-logit")
    with pytest.warns(ExplainWarning, match="one output: read as the logit of a binary classifier"):
        model = explain.from_model(build(style), str(tokenizer_path()), family="text-classifier", device="cpu")
    assert model.labels == ("negative", "positive")
    ex = model.prepare(TEXTS[0], 0)
    z = float(build(style)(torch.tensor([ids_of(TEXTS[0])]))[0, 0])
    assert ex.probs[1] == pytest.approx(float(torch.sigmoid(torch.tensor(z))), abs=1e-6)
    assert abs(ex.probs[1] - 0.5) > 0.05  # the check could tell sigmoid(z) from 1 - sigmoid(z)


def test_sequence_first_models_are_read_so_and_said_so() -> None:
    """A (T, B) model given (B, T) ids mixes rows: the probe finds that, reads it (T, B), and says so."""
    style = _style("sequence-first-input")
    with pytest.warns(ExplainWarning, match=r"read as sequence-first, input \(T, B\)"):
        model = explain.from_model(build(style), str(tokenizer_path()), family="text-classifier", device="cpu")
    assert model.model.sequence_first
    stated = explain.from_model(build(style), str(tokenizer_path()), family="text-classifier", device="cpu", sequence_first=True)
    assert stated.model.sequence_first
    with pytest.raises(explain.errors.CheckpointError, match=r"does it expect \(T, B\) input, sequence first\?"):
        explain.from_model(build(style), str(tokenizer_path()), family="text-classifier", device="cpu", sequence_first=False)
    batch_first = _style("transposes-itself")  # takes (B, T) and transposes inside: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplainWarning)
        assert not explain.from_model(build(batch_first), str(tokenizer_path()), family="text-classifier", device="cpu").model.sequence_first


def test_inverted_mask_and_padding(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A padded batch gives each row its own answer: the mask is given as the model reads it (True = padding)."""
    style = _style("inverted-mask")
    with pytest.warns(ExplainWarning, match="reads True as padding"):
        model = explain.from_model(build(style), str(tokenizer_path()), family="text-classifier", device="cpu")
    assert model.model.mask_mode == "inverted"
    rows = [ids_of(TEXTS[0]), ids_of(TEXTS[1])]  # different lengths: the first is padded
    got = model.predict(rows)
    for r, p in zip(rows, got):
        assert_close(p, direct_text(style, torch.tensor([r]))[0].detach().numpy(), rel=1e-5)
    lstm = explain.from_model(build(_style("lstm-packed-sequences")), str(tokenizer_path()), family="text-classifier", device="cpu")
    assert lstm.model.mask_mode == "long"  # 1 = token, as the contract says


def test_a_learnt_cls_inside_forward_has_its_attention_read() -> None:
    style = _style("learned-cls")
    module = build(style)
    model = explain.from_model(module, str(tokenizer_path()), family="text-classifier", device="cpu")
    [e] = explain.explain(model, [TEXTS[0]], methods=["attention"])
    t = len(ids_of(TEXTS[0]))
    att = np.asarray(e.extras["token_attention"])
    assert att.shape == (2, 2, t + 1, t + 1) and e.extras["tokens"][0] == "[model's own 0]"
    assert e.extras["answer_rows"] == [0] and e.extras["answer_rule"] == "first (assumed)"  # the [CLS] the head reads
    assert len(e.features) == t and np.isfinite(e.scores).all() and float(np.abs(e.scores).max()) > 0
    # the first layer's maps, by its own attention module called directly
    ids = torch.tensor([ids_of(TEXTS[0])])
    x = torch.cat([module.cls, module.embedding(ids)], 1)
    x = x + module.pos[:, : x.shape[1]]
    _, ref = module.encoder.layers[0].self_attn(x, x, x, need_weights=True, average_attn_weights=False)
    assert_close(att[0], ref[0].detach().numpy(), rel=1e-5)


def _chefer(att: list[torch.Tensor], grads: list[torch.Tensor]) -> np.ndarray:
    """Chefer, Gur & Wolf 2021 relevance minus the identity (T, T), in float64."""
    t = att[0].shape[-1]
    r = np.eye(t)
    for a, g in zip(att, grads):
        r = r + np.maximum(g[0].double().numpy() * a[0].detach().double().numpy(), 0.0).mean(0) @ r
    return r - np.eye(t)


def test_inline_softmax_heads_are_read_as_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lecture-style heads (one F.softmax (B, T, T) per Head in a ModuleList) become (1, H, T, T) layers whose
    relevance uses each head's own gradient: equal to maps and gradients recorded on the model directly."""
    style = _style("inline-attention")
    module = build(style)
    model = explain.from_model(module, str(tokenizer_path()), family="text-classifier", device="cpu")
    [e] = explain.explain(model, [TEXTS[1]], methods=["attention"])
    ids = torch.tensor([ids_of(TEXTS[1])])
    seen: list[torch.Tensor] = []
    original = torch.nn.functional.softmax

    def keep(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = original(x, *args, **kwargs)
        out.retain_grad()
        seen.append(out)
        return out

    monkeypatch.setattr(torch.nn.functional, "softmax", keep)
    logits = module(ids)
    monkeypatch.undo()
    torch.softmax(logits, -1)[0, e.target.index].backward()
    assert len(seen) == 4  # 2 layers x 2 heads
    att = [torch.stack(seen[2 * i : 2 * i + 2], 1) for i in range(2)]  # (1, H, T, T) per layer
    grads = [torch.stack([s.grad for s in seen[2 * i : 2 * i + 2]], 1) for i in range(2)]  # type: ignore[misc]
    assert_close(np.asarray(e.extras["token_attention"]), torch.cat(att).detach().numpy(), rel=1e-5)
    assert_close(e.extras["token_relevance"], _chefer(att, grads)[0], rel=1e-4)


def test_frozen_embeddings_refuse_ig_in_one_line() -> None:
    with pytest.warns(ExplainWarning, match="cuts the gradient"):
        model = explain.from_model(build(FROZEN), str(tokenizer_path()), family="text-classifier", device="cpu")
    with pytest.raises(MethodError, match=r"'ig' cannot run on this model: .*\.detach\(\).*it can run: .*shap"):
        explain.explain(model, [TEXTS[0]], methods=["ig"])
    assert len(explain.explain(model, [TEXTS[0]], methods=["shap"], shap={"max_evals": 30})) == 1


@pytest.mark.slow
def test_frozen_embeddings_through_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, proc = packed(FROZEN)
    assert proc.returncode == 0, proc.stderr
    refused = run_folder(folder, tmp_path / "a", "--text", TEXTS[0], "--methods", "ig")
    assert refused.returncode == 2 and "'ig' cannot run on this model" in one_line(refused)


class _Codec:
    """An encode/decode tokenizer that says nothing of its vocabulary size (no n_vocab, vocab_size or len)."""

    def encode(self, text: str) -> list[int]:
        return ids_of(text)

    def decode(self, ids: list[int]) -> str:
        return " ".join(VOCAB[i] for i in ids)


def test_an_encode_decode_tokenizer_without_a_vocabulary_size() -> None:
    style = _style("log-softmax-output")
    model = explain.from_model(build(style), _Codec(), family="text-classifier", device="cpu", special_tokens={"mask": "[MASK]"})
    [e] = explain.explain(model, [TEXTS[0]], methods=["ig"], ig=IG_SETTINGS)
    assert len(model.tokenizer) == len(VOCAB)  # the embedding's size stands for it
    assert_close(e.scores, text_ig(style, TEXTS[0], e.target.index), rel=1e-4)
