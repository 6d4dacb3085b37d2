"""Token classification: a BERT NER-style model trained in seconds on planted data is explained right.

The planted truth: a word right after a cue word takes the cue's label (mr: PER, city: LOC,
firm: ORG), whatever the word itself is; every other word is O. Removing the cue (masked,
unknown or padded) makes that word O. Sentences hold one or two entities, so the right cue is
the explained entity's own, not the other one's.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.adapters.token_classifier import TokenClassifierAdapter, is_token_classifier, outside_index
from explain.errors import MethodError, TargetError
from explain.results.explanation import ModelInfo
from explain.execution.runner import Runner
from explain.results.hashing import state_hash

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = "the a we saw met went to from with at and then later today old new".split()
NAMES = "alex sam rio oslo acme zeta kim lee".split()
CUES = {"mr": 1, "city": 2, "firm": 3}
LABELS = ["O", "PER", "LOC", "ORG"]
FILLS = ["[MASK]", "[UNK]", "[PAD]"]

Row = tuple[list[str], list[int], list[tuple[int, int]]]  # words, labels, (cue position, entity position)


def planted_sentences(n: int, seed: int, augment: bool) -> list[Row]:
    """Return (words, word labels, [(cue, entity)]) with one or two cue + word entities."""
    rng = random.Random(seed)
    out: list[Row] = []
    for _ in range(n):
        words = [rng.choice(FILLER + NAMES) for _ in range(rng.randint(4, 8))]  # names without a cue are O
        for _ in range(rng.choice((1, 1, 2))):
            at = rng.randrange(len(words) + 1)
            words[at:at] = [rng.choice(list(CUES)), rng.choice(NAMES + FILLER)]
        labels = [0] * len(words)
        pairs = []
        for i in range(len(words) - 1):
            if words[i] in CUES:
                labels[i + 1] = CUES[words[i]]
                pairs.append((i, i + 1))
        if augment:
            for c, e in pairs:
                if rng.random() < 0.25:  # the cause removed: the entity is O
                    words[c] = rng.choice(FILLS)
                    labels[e] = 0
            cues = {c for c, _ in pairs}
            for i in range(len(words)):  # removal noise elsewhere (the entity word itself too)
                if i not in cues and words[i] not in FILLS and rng.random() < 0.12:
                    words[i] = rng.choice(FILLS)
            pairs = [(c, e) for c, e in pairs if words[c] in CUES]
        out.append((words, labels, pairs))
    return out


def _build() -> tuple[Any, Any]:
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + FILLER + NAMES + list(CUES))}
    tok = BertTokenizerFast(vocab=vocab)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=40, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={k: i for i, k in enumerate(LABELS)}, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    return BertForTokenClassification(cfg), tok


def _batch(tok: Any, rows: list[Row]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    # every word is one token here, so word i is token i + 1 ([CLS] first)
    enc = tok([" ".join(w) for w, _, _ in rows], padding=True, return_tensors="pt")
    labels = torch.full(enc["input_ids"].shape, -100)
    for b, (_, lab, _) in enumerate(rows):
        labels[b, 1 : 1 + len(lab)] = torch.tensor(lab)
    return enc, labels


def train_token_classifier(epochs: int = 12, seed: int = 0) -> tuple[Any, Any]:
    """Return (model, tokenizer) of a tiny BERT token classifier trained on planted sentences (seconds)."""
    model, tok = _build()
    data = planted_sentences(3000, seed, augment=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=g).split(64):
            enc, labels = _batch(tok, [data[i] for i in idx])
            loss = model(**enc, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), tok


def make_adapter(model: Any, tok: Any) -> TokenClassifierAdapter:
    """Return the token-classifier adapter of an in-memory model (what loading builds after the hook)."""
    info = ModelInfo(
        family="text-classifier", path="<in memory>", content_hash=state_hash(model),
        parameters=sum(p.numel() for p in model.parameters()), labels=tuple(LABELS),
        architecture="BertForTokenClassification", layers=2, heads=4, max_length=40,
    )
    return TokenClassifierAdapter(model, tok, info, Runner(torch.device("cpu")))


@pytest.fixture(scope="module")
def trained() -> tuple[Any, Any]:
    return train_token_classifier()


@pytest.fixture(scope="module")
def adapter(trained: tuple[Any, Any]) -> TokenClassifierAdapter:
    return make_adapter(*trained)


def _heldout(n: int) -> list[Row]:
    return planted_sentences(n, seed=4242, augment=False)


def test_planted_token_model_learned_the_cause_and_the_null(trained: tuple[Any, Any]) -> None:
    model, tok = trained
    rows = _heldout(100)
    enc, labels = _batch(tok, rows)
    with torch.no_grad():
        pred = model(**enc).logits.argmax(-1)
    ents = [(b, e + 1) for b, (_, _, pairs) in enumerate(rows) for _, e in pairs]
    acc = np.mean([pred[b, t].item() == labels[b, t].item() for b, t in ents])
    assert acc >= 0.95, f"entity accuracy {acc:.0%}"
    o_ok = ((pred == labels) | (labels != 0)).float().mean().item()
    assert o_ok >= 0.97
    for fill in FILLS:  # each entity's cue removed: the entity becomes O
        removed = [([fill if i == c else x for i, x in enumerate(w)], lab, pairs) for w, lab, pairs in rows for c, _ in pairs[:1]]
        enc2, _ = _batch(tok, removed)
        with torch.no_grad():
            p2 = model(**enc2).logits.argmax(-1)
        null = np.mean([p2[b, pairs[0][1] + 1].item() == 0 for b, (_, _, pairs) in enumerate(removed)])
        assert null >= 0.9, f"removing the cue ({fill}) gives O for only {null:.0%}"


def test_family_helpers() -> None:
    assert is_token_classifier("BertForTokenClassification") and not is_token_classifier("BertForSequenceClassification")
    assert outside_index(["B-PER", "O", "I-PER"]) == 1 and outside_index(["LABEL_0", "LABEL_1"]) is None


def test_default_targets_are_the_predicted_entities(adapter: TokenClassifierAdapter) -> None:
    ex = adapter.prepare("we saw mr alex at city oslo today", 0)
    targets = adapter.targets(ex)
    assert [(t.label, t.position) for t in targets] == [("PER", 4), ("LOC", 7)]  # tokens: [CLS] we saw mr alex ...
    assert ex.record.note is not None and "alex=PER" in ex.record.note and "oslo=LOC" in ex.record.note
    # word:N, word:N=LABEL, a label at every default word, every word
    assert [(t.label, t.position) for t in adapter.targets(ex, "word:3")] == [("PER", 4)]
    assert [(t.label, t.position) for t in adapter.targets(ex, "word:3=LOC")] == [("LOC", 4)]
    assert [t.label for t in adapter.targets(ex, "O")] == ["O", "O"]
    assert len(adapter.targets(ex, "words")) == 8
    assert adapter.targets(ex, "word:-1")[0].position == 8
    # a dict input names its own default words
    ex2 = adapter.prepare({"text": "we saw mr alex", "word": [0, 3]}, 1)
    assert [t.position for t in adapter.targets(ex2)] == [1, 4]


def test_bad_targets_fail_before_any_model_call(adapter: TokenClassifierAdapter) -> None:
    with pytest.raises(TargetError, match="unknown target label 'MISC'"):
        adapter.check_target("word:2=MISC")
    with pytest.raises(TargetError, match="word number"):
        adapter.check_target("word:")
    ex = adapter.prepare("we saw mr alex", 0)
    with pytest.raises(TargetError, match="out of range: the text has 4 words"):
        adapter.targets(ex, "word:9")


def test_no_entity_means_nothing_by_default_and_says_so(adapter: TokenClassifierAdapter) -> None:
    res = explain.explain(adapter, ["we saw the old alex today"], methods="ablation")
    assert len(res) == 0 and not res.failures
    assert "word:N" in (res.inputs[0].note or "")


def test_drop_follows_the_row_and_masks_the_explained_word(adapter: TokenClassifierAdapter) -> None:
    # under drop, removed words are deleted (the answering row moves left with them) and the
    # explained word itself, when removed, is masked: its label needs its row
    text = "we saw mr alex at city oslo"
    ex = adapter.prepare(text, 0)
    t = adapter.targets(ex, "word:6")[0]  # oslo: LOC
    view = adapter.perturbation_view(ex, t, baseline="drop")
    keep = np.ones((3, 7), dtype=bool)
    keep[1, [0, 1, 2]] = False  # "we saw mr" dropped: oslo's row moves from 7 to 4
    keep[2, [1, 6]] = False  # "saw" dropped, "oslo" itself masked
    refs = [(text, 7), ("alex at city oslo", 4), ("we mr alex at city [MASK]", 6)]
    with torch.no_grad():
        direct = [torch.softmax(adapter.model(**adapter.tokenizer(s, return_tensors="pt")).logits, -1)[0, r, t.index].item() for s, r in refs]
    np.testing.assert_allclose(view.evaluate(keep), direct, atol=1e-5)
    assert view.extras["target_word_removal"] == "mask"
    with pytest.raises(MethodError, match="IG cannot drop words"):
        explain.explain(adapter, [text], methods="ig", baseline="drop")


@pytest.fixture(scope="module")
def heldout_results(adapter: TokenClassifierAdapter) -> tuple[explain.Results, list[Row]]:
    rows = _heldout(16)
    results = explain.explain(adapter, [" ".join(w) for w, _, _ in rows], methods=["ig", "shap", "lime", "ablation"])
    return results, rows


@pytest.mark.parametrize("method", ["ig", "shap", "lime", "ablation"])
def test_the_right_entitys_cue_is_top_1(heldout_results: Any, method: str) -> None:
    results, rows = heldout_results
    hits, total = 0, 0
    for e in results.by_method(method):
        words, labels, pairs = rows[e.input]
        w = e.extras["target_word"]
        assert e.target.position == w + 1 and e.extras["target_word_text"] == words[w]
        cue = {ent: c for c, ent in pairs}.get(w)
        if cue is None or e.target.index != labels[w]:
            continue  # only correctly predicted planted entities count
        total += 1
        hits += int(np.argmax(e.scores)) == cue
    assert total >= 20, total
    assert hits / total >= 0.9, f"{method}: the entity's own cue is top-1 in {hits}/{total}"


def test_two_entities_two_explanations(heldout_results: Any) -> None:
    results, rows = heldout_results
    two = [i for i, (_, _, pairs) in enumerate(rows) if len(pairs) == 2]
    assert two
    for i in two:
        ig = [e for e in results.for_input(i) if e.method == "ig"]
        assert sorted(e.extras["target_word"] for e in ig) == sorted(ent for _, ent in rows[i][2])


def test_ig_matches_captum_at_the_words_row(adapter: TokenClassifierAdapter) -> None:
    from captum.attr import IntegratedGradients

    text = "we saw mr alex at city oslo"
    res = explain.explain(adapter, [text], target="word:6", methods="ig", ig={"adaptive": False, "n_steps": 32, "baseline": "mask"})
    e = res[0]
    model, tok = adapter.model, adapter.tokenizer
    ids = tok(text, return_tensors="pt")["input_ids"]
    base_ids = ids.clone()
    base_ids[0, 1:-1] = tok.mask_token_id
    emb = model.get_input_embeddings()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(inputs_embeds=x).logits[:, 7, :], -1)[:, e.target.index]  # word 6 = token 7

    with torch.no_grad():
        x, base = emb(ids), emb(base_ids)
    ref = IntegratedGradients(forward).attribute(x, baselines=base, n_steps=32, method="gausslegendre").sum(-1)[0, 1:-1].numpy()
    assert e.target.label == "LOC" and e.extras["target_word"] == 6
    np.testing.assert_allclose(e.scores, ref, rtol=0, atol=1e-4 * np.abs(ref).max() + 1e-8)
    assert int(np.argmax(e.scores)) == 5  # "city"


def test_perturbation_outputs_are_read_at_the_words_row(adapter: TokenClassifierAdapter) -> None:
    ex = adapter.prepare("we saw mr alex at city oslo", 0)
    t = adapter.targets(ex, "word:3")[0]
    view = adapter.perturbation_view(ex, t, baseline="mask")
    assert "target_word_removal" not in view.extras
    keep = np.ones((2, 7), dtype=bool)
    keep[1, 2] = False  # "mr" masked
    masked = "we saw [MASK] alex at city oslo"
    with torch.no_grad():
        full = torch.softmax(adapter.model(**adapter.tokenizer("we saw mr alex at city oslo", return_tensors="pt")).logits, -1)[0, 4, 1].item()
        gone = torch.softmax(adapter.model(**adapter.tokenizer(masked, return_tensors="pt")).logits, -1)[0, 4, 1].item()
    np.testing.assert_allclose(view.evaluate(keep), [full, gone], atol=1e-5)
    assert full > 0.5 > gone


def test_results_file_round_trip(heldout_results: Any, tmp_path: Path) -> None:
    from explain.results.results_io import read_file, save

    results, _ = heldout_results
    back = read_file(save(results, tmp_path / "results.json"))
    assert back == results
    assert all(isinstance(e.extras["target_word"], int) for e in back)


def test_word_targets_helper(adapter: TokenClassifierAdapter) -> None:
    from explain.adapters.token_classifier import word_targets

    assert word_targets(adapter, 3) == ["word:3"]
    assert word_targets(adapter, [3, 6], "LOC") == ["word:3=LOC", "word:6=LOC"]
    assert word_targets(adapter, None, "LOC") == "LOC"
    with pytest.raises(TargetError, match="not a word number"):
        word_targets(adapter, "x")
    with pytest.raises(TargetError, match="token classifiers"):
        word_targets(object(), 3)
    assert word_targets(None, 2) == ["word:2"]  # the Ray driver: no model to check


# ---- after wiring (notes/hooks_h-pairs.md) ---------------------------------------------------
# Each test below needs a change in a file h-pairs does not own. Until the hook is in, the test
# is a strict xfail (it must fail); once the probe sees the hook, it runs as a plain test.


def _hooked_loading() -> bool:
    from explain.loading.checkpoint import family_of_class

    return family_of_class("BertForTokenClassification") == "text-classifier"


def _hooked_answer_row() -> bool:
    from explain.adapters.answer_row import answer_rows

    class Probe:
        family = "text-classifier"
        model = None

        def answer_rows(self, example: Any, target: Any) -> tuple[int, ...]:
            return (3,)

    example = type("Example", (), {"state": None})()
    # an encoder's map (not causal): without the hook the row is 0 ([CLS])
    return answer_rows(Probe(), example, None, [torch.full((1, 1, 6, 6), 1 / 6)]) == (3,)


def _hooked_engine() -> bool:
    import inspect

    return "word" in inspect.signature(explain.explain).parameters


def _hooked_cli() -> bool:
    from explain.cli.main import build_parser

    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # argparse prints its usage on an unknown flag
            build_parser().parse_args(["run", "x", "--target-word", "3"])
    except SystemExit:
        return False
    return True


def needs(probe: Any, hook: str) -> Any:
    """Mark a test that needs `hook` of notes/hooks_h-pairs.md: strict xfail until `probe()` sees it."""
    return pytest.mark.xfail(not probe(), reason=f"needs {hook} of notes/hooks_h-pairs.md", strict=True)


@pytest.fixture(scope="module")
def saved_token_model(trained: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ner-bert")
    trained[0].save_pretrained(folder)
    trained[1].save_pretrained(folder)
    return folder


@needs(_hooked_answer_row, "H2 (answer_row)")
def test_attention_reads_the_explained_words_row(adapter: TokenClassifierAdapter) -> None:
    rows = _heldout(16)
    res = explain.explain(adapter, [" ".join(w) for w, _, _ in rows], methods="attention")
    hits, total = 0, 0
    for e in res:
        assert e.extras["answer_row"] == e.target.position
        words, labels, pairs = rows[e.input]
        w = e.target.position - 1
        cue = {ent: c for c, ent in pairs}.get(w)
        if cue is not None and e.target.index == labels[w]:
            total += 1
            hits += int(np.argmax(e.scores)) == cue
    assert total >= 20 and hits / total >= 0.9, f"attention relevance: the cue is top-1 in {hits}/{total}"


@needs(_hooked_loading, "H1 (loading)")
def test_load_gives_the_token_adapter(saved_token_model: Path) -> None:
    model = explain.load(saved_token_model, device="cpu")
    assert isinstance(model, TokenClassifierAdapter) and model.family == "text-classifier"
    res = explain.explain(model, ["we saw mr alex at city oslo"], methods="ablation")
    assert [(e.target.label, e.extras["target_word_text"]) for e in res] == [("PER", "alex"), ("LOC", "oslo")]


@needs(_hooked_engine, "H3 (engine word=)")
def test_api_word_keyword(adapter: TokenClassifierAdapter) -> None:
    res = explain.explain(adapter, "we saw mr alex at city oslo", word=6, methods="ig")  # type: ignore[call-arg]
    assert len(res) == 1 and res[0].extras["target_word"] == 6 and res[0].target.label == "LOC"


@pytest.mark.slow
@needs(lambda: _hooked_cli() and _hooked_loading(), "H1 (loading) and H4 (CLI --target-word)")
def test_cli_target_word(saved_token_model: Path, tmp_path: Path) -> None:
    import json

    from conftest import run_cli

    done = run_cli("run", str(saved_token_model), "--text", "we saw mr alex at city oslo", "--target-word", "6", "--methods", "ig,shap,lime",
                   "--out", str(tmp_path), "--no-report", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    assert [e["extras"]["target_word"] for e in res["explanations"]] == [6, 6, 6]
    assert all(e["features"][int(np.argmax(e["scores"]))] == "city" for e in res["explanations"])
    assert res["inputs"][0]["note"].startswith("predicted: ")  # the report shows the predicted labels ...
    assert "explain: warning" not in done.stderr  # ... the command line does not call them a warning


def test_the_planted_check_catches_an_adapter_reading_the_wrong_row(adapter: TokenClassifierAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    # a broken adapter that reads every word's label at [CLS] (row 0), as a sequence classifier
    # would: the cue-is-top-1 criterion the tests above apply must then fail
    import explain.adapters.token_classifier as tc

    monkeypatch.setattr(tc, "tok_row", lambda example, target: 0)
    rows = _heldout(16)
    res = explain.explain(adapter, [" ".join(w) for w, _, _ in rows], methods="ablation")
    hits, total = 0, 0
    for e in res:
        words, labels, pairs = rows[e.input]
        w = e.extras["target_word"]
        cue = {ent: c for c, ent in pairs}.get(w)
        if cue is not None and e.target.index == labels[w]:
            total += 1
            hits += int(np.argmax(e.scores)) == cue
    assert total >= 20 and hits / total < 0.9, f"a wrong row still found the cue in {hits}/{total}"
