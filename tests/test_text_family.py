"""Text classifiers: each method against its library called directly, its axiom, and word grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from explain.adapters.text import TextClassifierAdapter
from explain.errors import InputError, TargetError

from conftest import FILLER, SENTIMENT, save_bert

TEXT = "the movie was unwatchable and awful"


def save_encoder(folder: Path, kind: str) -> Path:
    """Save a random DistilBERT (WordPiece) or RoBERTa (byte-level BPE) classifier folder."""
    from transformers import (
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
        RobertaTokenizerFast,
    )

    torch.manual_seed(0)
    labels = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}, "label2id": {"negative": 0, "neutral": 1, "positive": 2}}
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "distilbert":
        from conftest import bert_vocab

        tok = BertTokenizerFast(vocab=bert_vocab())
        cfg = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64, num_labels=3, **labels)
        model = DistilBertForSequenceClassification(cfg)
    else:
        from tokenizers import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer()
        corpus = [" ".join(FILLER + SENTIMENT), "unwatchable delightful movies acting"] * 3
        bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        vocab = bpe.get_vocab()
        merges = [tuple(m.split()) for m in _merges(bpe)]
        tok = RobertaTokenizerFast(vocab=vocab, merges=merges)
        cfg = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=66, pad_token_id=1, num_labels=3, **labels)
        model = RobertaForSequenceClassification(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _merges(bpe: object) -> list[str]:
    import json

    doc = json.loads(bpe.to_str())  # type: ignore[attr-defined]
    return [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]


@pytest.fixture(scope="module")
def model(tiny_bert: Path) -> TextClassifierAdapter:
    m = explain.load(tiny_bert, device="cpu")
    assert isinstance(m, TextClassifierAdapter)
    return m


def test_subword_pieces_are_grouped_into_words(model: TextClassifierAdapter) -> None:
    [e] = explain.explain(model, [TEXT], methods=["ig"])
    assert e.features == ("the", "movie", "was", "unwatchable", "and", "awful")
    assert e.extras["feature_tokens"][3] == ["un", "##watch", "##able"]
    assert e.scores.shape == (6,)
    [t] = explain.explain(model, [TEXT], methods=["ig"], granularity="token")
    assert t.features == ("the", "movie", "was", "un", "##watch", "##able", "and", "awful")
    # word scores are the sums of their tokens' scores
    assert np.isclose(e.scores[3], t.scores[3:6].sum(), atol=1e-6)


def test_special_tokens_never_appear_as_words(model: TextClassifierAdapter) -> None:
    for e in explain.explain(model, [TEXT], methods=["ig", "shap", "lime", "attention", "ablation"], lime={"num_samples": 200}):
        assert not any(f in ("[CLS]", "[SEP]", "[PAD]") for f in e.features), e.method


def test_ig_matches_captum_layer_ig_called_directly(model: TextClassifierAdapter) -> None:
    from captum.attr import LayerIntegratedGradients

    [e] = explain.explain(model, [TEXT], methods=["ig"], target="positive", ig={"baseline": "pad", "adaptive": False})
    enc = model.tokenizer(TEXT, return_tensors="pt")
    ids = enc["input_ids"]
    base = torch.where(torch.tensor(model.tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)).bool(), ids, torch.full_like(ids, model.tokenizer.pad_token_id))

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model.model(input_ids=input_ids).logits, -1)[:, 2]

    lig = LayerIntegratedGradients(forward, model.model.get_input_embeddings())
    attr, delta = lig.attribute(ids, baselines=base, n_steps=50, method="gausslegendre", return_convergence_delta=True)
    per_token = attr.sum(-1)[0].detach().numpy()
    theirs = np.array([per_token[1], per_token[2], per_token[3], per_token[4:7].sum(), per_token[7], per_token[8]])
    cos = float(np.dot(theirs, e.scores) / (np.linalg.norm(theirs) * np.linalg.norm(e.scores)))
    assert cos >= 0.99
    assert np.allclose(theirs, e.scores, rtol=1e-3, atol=1e-7)


def test_ig_completeness_at_defaults(model: TextClassifierAdapter) -> None:
    for e in explain.explain(model, [TEXT, "a great film with good acting"], methods=["ig"]):
        assert e.checks["delta_relative"] < 0.01
        assert np.isclose(e.scores.sum(), e.checks["output_change"], atol=abs(e.checks["output_change"]) * 0.01 + 1e-7)


def test_a_run_baseline_only_ig_can_use_is_taken_when_ig_is_the_only_method(model: TextClassifierAdapter) -> None:
    [e] = explain.explain(model, [TEXT], methods=["ig", "attention"], baseline="zero").by_method("ig")
    assert e.settings["baseline"] == "zero"
    with pytest.raises(explain.MethodError, match=r"only IG can use, and this run also has shap: give it to IG alone \(--set ig.baseline=zero\)"):
        explain.explain(model, [TEXT], methods=["ig", "shap"], baseline="zero")


def test_a_removal_whose_token_the_tokenizer_lacks_says_so() -> None:
    classifier, tok = gpt2_classifier(True)  # [PAD] and [UNK], no mask token
    wrapped = explain.from_model(classifier, tok, device="cpu")
    with pytest.raises(explain.MethodError, match="needs a mask token, which this model's tokenizer does not have; use one of: unk, pad, drop"):
        explain.explain(wrapped, ["a good film"], methods=["shap"], baseline="mask")


@pytest.mark.parametrize("baseline", ["pad", "mask", "zero"])
def test_every_ig_baseline_runs(model: TextClassifierAdapter, baseline: str) -> None:
    [e] = explain.explain(model, [TEXT], methods=["ig"], ig={"baseline": baseline})
    assert e.settings["baseline"] == baseline and np.isfinite(e.scores).all()


def test_shap_efficiency_and_base_value(model: TextClassifierAdapter) -> None:
    [e] = explain.explain(model, [TEXT], methods=["shap"], shap={"max_evals": 300})
    # efficiency holds by construction in shap's Partition explainer: the figures are checked
    # against direct model calls instead, and the 6 words fit the budget (exact Owen values)
    full = model.predict([list(model.tokenizer(TEXT)["input_ids"])])[0]
    assert np.isclose(e.checks["output"], full[e.target.index], atol=1e-6)
    [check, found] = e.self_checks
    assert found.name == "evidence"  # this random tiny model barely moves: no evidence may well be its verdict
    assert (check.name, check.passed, check.sentence.startswith("exact")) == ("stability", True, True)
    full_masked = model.predict([[model.tokenizer.cls_token_id] + [model.mask_id] * 8 + [model.tokenizer.sep_token_id]])[0]
    assert np.isclose(e.checks["base_value"], full_masked[e.target.index], atol=1e-6)
    assert np.isclose(e.scores.sum(), e.checks["output"] - e.checks["base_value"], atol=1e-3)


def test_lime_equals_lime_text_explainer_called_directly(model: TextClassifierAdapter) -> None:
    from lime.lime_text import LimeTextExplainer

    text = "the movie was unwatchable and awful"  # no repeated word: lime's bow features = positions
    # lime's text explainer deletes removed words: the same removal, asked for by name
    [e] = explain.explain(model, [text], methods=["lime"], target=0, lime={"num_samples": 400, "baseline": "drop", "adaptive": False}, seed=7)
    assert e.settings["baseline"] == "drop"

    def predict(texts: list[str]) -> np.ndarray:
        enc = model.tokenizer(list(texts), return_tensors="pt", padding=True)
        with torch.no_grad():
            return torch.softmax(model.model(**enc).logits, -1).numpy()

    lime_exp = LimeTextExplainer(random_state=7, split_expression=r"\s+", bow=True).explain_instance(
        text, predict, labels=(0,), num_features=6, num_samples=400
    )
    theirs = dict(lime_exp.as_list(label=0))
    ours = dict(zip(e.features, e.scores))
    for word, weight in theirs.items():
        assert np.isclose(ours[word], weight, rtol=1e-3, atol=1e-6), word
    assert np.isclose(e.checks["score"], lime_exp.score, atol=1e-6)


def test_several_targets_and_label_names(model: TextClassifierAdapter) -> None:
    res = explain.explain(model, [TEXT], methods=["ig"], target=["negative", 2])
    assert [e.target.label for e in res] == ["negative", "positive"]
    with pytest.raises(TargetError, match="unknown target label 'happy'"):
        explain.explain(model, [TEXT], methods=["ig"], target="happy")


def test_default_target_is_the_prediction(model: TextClassifierAdapter) -> None:
    [e] = explain.explain(model, [TEXT], methods=["ig"])
    probs = model.predict([list(model.tokenizer(TEXT)["input_ids"])])[0]
    assert e.target.index == int(np.argmax(probs))
    assert np.isclose(e.target.probability, probs.max(), atol=1e-6)


def test_same_seed_same_results(model: TextClassifierAdapter) -> None:
    kw = dict(methods=["ig", "shap", "lime"], lime={"num_samples": 300}, seed=3)
    a = explain.explain(model, [TEXT], **kw)
    b = explain.explain(model, [TEXT], **kw)
    for x, y in zip(a, b):
        assert np.array_equal(x.scores, y.scores), x.method


def test_one_empty_text_fails_alone(model: TextClassifierAdapter) -> None:
    res = explain.explain(model, [TEXT, "   ", "a good film"], methods=["ig"], errors="record")
    assert [e.input for e in res] == [0, 2]
    assert len(res.failures) == 1 and res.failures[0].input == 1 and "empty" in res.failures[0].error
    with pytest.raises(InputError, match="empty"):  # the API's default: a script sees the error
        explain.explain(model, [TEXT, "   "], methods=["ig"])


def test_long_text_is_truncated_with_a_note(model: TextClassifierAdapter) -> None:
    long = " ".join(["movie"] * 200)
    res = explain.explain(model, [long], methods=["ig"])
    assert "truncated from 202 to 64 tokens" in (res.inputs[0].note or "")
    assert len(res[0].features) == 62


def test_attention_maps_shapes_and_rows(model: TextClassifierAdapter) -> None:
    [e] = explain.explain(model, [TEXT], methods=["attention"])
    T, n = 10, 6
    assert e.extras["token_attention"].shape == (2, 4, T, T)
    assert np.allclose(e.extras["token_attention"].sum(-1), 1.0, atol=1e-5)
    assert np.allclose(e.extras["token_rollout"].sum(-1), 1.0, atol=1e-5)
    assert e.extras["attention"].shape == (2, 4, n, n)
    assert e.scores.shape == (n,)
    # the eager switch for the capture was for that call only (the test below checks it directly)


def test_attention_restores_the_attention_implementation(tiny_bert: Path) -> None:
    m = explain.load(tiny_bert, device="cpu")
    before = m.model.config._attn_implementation
    explain.explain(m, [TEXT], methods=["attention"])
    assert m.model.config._attn_implementation == before


def test_real_sized_bert_vocab_and_heads(tmp_path: Path) -> None:
    folder = save_bert(tmp_path / "big", hidden=96, heads=12, layers=2, extra_vocab=30_000)
    m = explain.load(folder, device="cpu")
    res = explain.explain(m, ["the unwatchable movies"], methods=["ig", "attention", "shap", "lime"], lime={"num_samples": 200})
    assert {e.method for e in res} == {"ig", "attention", "shap", "lime"}
    assert res[0].features == ("the", "unwatchable", "movies")
    assert res.by_method("attention")[0].extras["token_attention"].shape[1] == 12


@pytest.mark.parametrize("kind", ["distilbert", "roberta"])
def test_other_encoders_explain_unchanged(tmp_path: Path, kind: str) -> None:
    m = explain.load(save_encoder(tmp_path / kind, kind), device="cpu")
    res = explain.explain(m, ["the movie was  unwatchable!"], methods=["ig", "attention", "shap", "lime"], lime={"num_samples": 200})
    for e in res:
        assert e.features == ("the", "movie", "was", "unwatchable!"), (kind, e.method, e.features)
    assert res.by_method("ig")[0].checks["delta_relative"] < 0.01


@pytest.mark.parametrize("kind", ["roberta", "distilbert"])
def test_a_pad_filled_word_keeps_its_place_in_every_method(tmp_path: Path, kind: str) -> None:
    """RoBERTa numbers positions by skipping its pad id: fed as ids, a [PAD]-filled word would
    also move the words after it in SHAP's and ablation's rows but not in IG's embeddings. Every
    method must remove it the same way: IG's f(x) - f(baseline) equals SHAP's output minus its
    base value, and a word's ablation score equals a direct call on embeddings."""
    m = explain.load(save_encoder(tmp_path / kind, kind), device="cpu")
    assert isinstance(m, TextClassifierAdapter)
    text = "the movie was unwatchable and awful"
    res = explain.explain(m, [text], methods=["ig", "shap", "ablation"], baseline="pad", target=1, ig={"n_steps": 64})
    ig, shap, ablation = (res.by_method(n)[0] for n in ("ig", "shap", "ablation"))
    assert ig.checks["output_change"] == pytest.approx(shap.checks["output"] - shap.checks["base_value"], abs=1e-7)  # two direct forwards each
    ids = torch.tensor([m.tokenizer(text)["input_ids"]])
    pad = m.tokenizer.pad_token_id
    first = ablation.extras["feature_tokens"][0]
    at = [i for i, t in enumerate(m.tokenizer.convert_ids_to_tokens(ids[0])) if t in first][:len(first)]
    removed = ids.clone()
    removed[0, at] = pad
    emb = m.model.get_input_embeddings()
    with torch.no_grad():
        probs = [torch.softmax(m.model(inputs_embeds=emb(x), attention_mask=torch.ones_like(x)).logits, -1)[0, 1] for x in (ids, removed)]
    assert ablation.scores[0] == pytest.approx(float(probs[0] - probs[1]), abs=1e-7)
    assert m._pad_positions is (kind == "roberta")  # only a model that skips pads is fed embeddings


# ---- decoder-only classifiers (GPT-2 *ForSequenceClassification) -----------------------------
def gpt2_classifier(pad_in_config: bool) -> tuple[object, object]:
    """A random GPT-2 sequence classifier over a word-level vocabulary with [PAD] and [UNK] (no download)."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "the a movie film was is plot acting good bad great awful very not and".split()
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *words])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", model_max_length=32)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=32, n_layer=2, n_head=4, initializer_range=0.3,
                                  pad_token_id=0 if pad_in_config else None, id2label={0: "negative", 1: "positive"},
                                  label2id={"negative": 0, "positive": 1})
    return transformers.GPT2ForSequenceClassification(cfg).eval(), tok


@pytest.mark.parametrize("pad_in_config", [False, True])
def test_decoder_classifier_batches_rows_as_it_scores_each_alone(pad_in_config: bool) -> None:
    # Without config.pad_token_id, GPT-2's classifier refuses batches of more than one row; the
    # adapter names a pad id no row holds for the call. Under `pad` removal a removed last word is
    # [PAD] itself: padding with [PAD] would make the model read an earlier token of that row.
    model, tok = gpt2_classifier(pad_in_config)
    adapter = explain.from_model(model, tok, device="cpu")
    ex = adapter.prepare("the movie was very good", 0)
    t = adapter.targets(ex)[0]
    d = len(ex.state.words)
    keep = np.ones((4, d), dtype=bool)
    keep[1, -1] = keep[2, :2] = keep[3, 1:] = False  # the last word removed; the first two; all but the first
    for removal in ("pad", "unk", "drop"):
        view = adapter.perturbation_view(ex, t, baseline=removal)
        together = view.evaluate(keep)  # one padded batch
        alone = [view.evaluate(k[None])[0] for k in keep]  # one row per call: no padding
        np.testing.assert_allclose(together, alone, atol=1e-6)
    pad_last = [*ex.state.ids[:-1], tok.pad_token_id]  # the last word removed under `pad`
    rows = [list(ex.state.ids), list(ex.state.ids[:-2]), pad_last]
    with torch.no_grad():  # each row unpadded, the model called directly (as it answers alone)
        direct = [torch.softmax(model(input_ids=torch.tensor([r])).logits[0], -1).numpy() for r in rows]
    np.testing.assert_allclose(adapter.predict(rows), direct, atol=1e-6)
    assert model.config.pad_token_id == (0 if pad_in_config else None)  # the model is left as it was
    # attention reads the row the classifier answers from: the last token, not row 0
    assert adapter.attention_view(ex, t).query == len(ex.state.ids) - 1
