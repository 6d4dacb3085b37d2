"""Sentence pairs: a BERT pair classifier trained in seconds on planted data is explained right.

The planted truth: the hypothesis (second segment) holds at most one cue word that decides the
label (true/right: entailment, false/wrong: contradiction); none, or the cue removed (masked,
unknown, padded or dropped), is neutral. The premise carries the same cue words as decoys that
must not matter, so only a method that keeps the segments apart (token types, both segments'
words as features) can point at the right one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.results.arrays import FLOAT16
from explain.adapters.pairs import PairTextClassifierAdapter, PairTokenized, segment_linkage, split_pair, tokenize_pair
from explain.distributed.sources import FileInput, plan, read_file
from explain.errors import InputError
from explain.loading.checkpoint import build_hf_adapter
from explain.execution.runner import Runner
from explain.results.hashing import state_hash

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = "the a man dog cat sat ran on in park house today with red big small old new".split()
CUES = {"true": 0, "right": 0, "false": 2, "wrong": 2}  # word -> label index
LABELS = ["entailment", "neutral", "contradiction"]
NULL = 1
REMOVALS = ["[MASK]", "[UNK]", "[PAD]", None]  # None: the word is dropped


def _sentence(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(FILLER) for _ in range(n)]


def planted_pairs(n: int, seed: int, augment: bool) -> list[tuple[list[str], list[str], int, int | None]]:
    """Return (premise words, hypothesis words, label, cue position in the hypothesis or None)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        premise = _sentence(rng, rng.randint(3, 6))
        if rng.random() < 0.6:  # decoy cue words in the premise: they must not matter
            premise.insert(rng.randrange(len(premise) + 1), rng.choice(list(CUES)))
        hyp = _sentence(rng, rng.randint(2, 5))
        label, pos = NULL, None
        if rng.random() < 0.8:
            cue = rng.choice(list(CUES))
            pos = rng.randrange(len(hyp) + 1)
            hyp.insert(pos, cue)
            label = CUES[cue]
            if augment and rng.random() < 0.25:  # the cause removed: null
                fill = rng.choice(REMOVALS)
                hyp = hyp[:pos] + ([fill] if fill else []) + hyp[pos + 1 :]
                label, pos = NULL, None
        if augment:  # removal noise on the other words, so that "removed" means "absent"
            for words, keep in ((premise, None), (hyp, pos)):
                for i in range(len(words)):
                    if i != keep and rng.random() < 0.12:
                        words[i] = rng.choice(REMOVALS[:3])
                if rng.random() < 0.2 and len(words) > 2:
                    drop = rng.randrange(len(words))
                    if drop != keep:
                        del words[drop]
                        if keep is not None and drop < keep:
                            pos = keep = keep - 1
        out.append((premise, hyp, label, pos))
    return out


def _build() -> tuple[Any, Any]:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + FILLER + list(CUES))}
    tok = BertTokenizerFast(vocab=vocab)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=40, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)},
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(cfg), tok


def _encode(tok: Any, rows: list[tuple[list[str], list[str], int, int | None]]) -> dict[str, torch.Tensor]:
    return tok([" ".join(p) for p, _, _, _ in rows], [" ".join(h) for _, h, _, _ in rows], padding=True, return_tensors="pt")


def train_pair_classifier(epochs: int = 6, seed: int = 0) -> tuple[Any, Any]:
    """Return (model, tokenizer) of a tiny BERT pair classifier trained on planted pairs (a few seconds)."""
    model, tok = _build()
    data = planted_pairs(3000, seed, augment=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=g).split(64):
            batch = [data[i] for i in idx]
            enc = _encode(tok, batch)
            loss = model(**enc, labels=torch.tensor([b[2] for b in batch])).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), tok


@pytest.fixture(scope="module")
def trained() -> tuple[Any, Any]:
    return train_pair_classifier()


@pytest.fixture(scope="module")
def adapter(trained: tuple[Any, Any]) -> PairTextClassifierAdapter:
    model, tok = trained
    base = build_hf_adapter(model, "text-classifier", tokenizer=tok, prep=None, path="<in memory>", content_hash=state_hash(model), runner=Runner(torch.device("cpu")))
    return PairTextClassifierAdapter(base.model, base.tokenizer, base.info, base.runner)


def _heldout(n: int) -> list[tuple[list[str], list[str], int, int | None]]:
    rows = [r for r in planted_pairs(400, seed=999, augment=False) if r[3] is not None]
    return rows[:n]


def test_planted_pair_model_learned_the_cause_and_the_null(trained: tuple[Any, Any]) -> None:
    # The ground truth holds only if the model answers from the hypothesis cue, and removing it
    # (masked, or dropped) gives the null class: checked on held-out pairs before any method.
    model, tok = trained
    rows = _heldout(100)
    with torch.no_grad():
        pred = model(**_encode(tok, rows)).logits.argmax(-1).tolist()
        acc = np.mean([p == r[2] for p, r in zip(pred, rows)])
        for fill in ("[MASK]", None):
            removed = [(p, h[: c] + ([fill] if fill else []) + h[c + 1 :], NULL, None) for p, h, _, c in rows]  # type: ignore[index, operator]
            null = np.mean([p == NULL for p in model(**_encode(tok, removed)).logits.argmax(-1).tolist()])
            assert null >= 0.9, f"removing the cue ({fill or 'dropped'}) gives neutral for only {null:.0%}"
    assert acc >= 0.95, f"held-out accuracy {acc:.0%}"


def test_pair_tokens_words_and_segments(adapter: PairTextClassifierAdapter) -> None:
    tok = tokenize_pair(adapter.tokenizer, "the dog sat", "the cat true", None)
    assert tok.tokens == ("[CLS]", "the", "dog", "sat", "[SEP]", "the", "cat", "true", "[SEP]")
    assert tok.words == ("the", "dog", "sat", "the", "cat", "true")
    assert tok.word_segment == (0, 0, 0, 1, 1, 1)
    assert tok.type_ids == (0, 0, 0, 0, 0, 1, 1, 1, 1)  # BERT: [CLS] a [SEP] are type 0
    # over the limit, whole words are cut from the end of the longer segment
    cut = tokenize_pair(adapter.tokenizer, "the dog sat in the park", "the cat true", 9)
    assert cut.words == ("the", "dog", "sat", "the", "cat", "true") and cut.truncated_from == 12


def test_split_pair_accepts_the_three_forms_and_refuses_others() -> None:
    assert split_pair({"text": "a", "text_pair": "b"}, None, 0) == ("a", "b")
    assert split_pair(("a", "b"), None, 0) == ("a", "b")
    assert split_pair("a", "b", 0) == ("a", "b")
    assert split_pair("a", None, 0) == ("a", None)
    with pytest.raises(InputError, match="keys"):
        split_pair({"premise": "a"}, None, 3)
    with pytest.raises(InputError, match="two texts"):
        split_pair(("a", "b", "c"), None, 0)


def test_segment_linkage_splits_the_segments_at_the_top() -> None:
    z = segment_linkage([0, 0, 0, 1, 1])
    assert z.shape == (4, 4)
    # the last merge joins the whole first segment (3 words) with the second (2 words)
    sizes = {int(r[3]) for r in z[:-1]}
    assert 3 in sizes and 2 in sizes and z[-1][3] == 5
    assert all(z[-1][2] > r[2] for r in z[:-1])  # the top merge is the highest (a valid linkage)
    # contiguous_linkage over 5 words would merge words 2 and 3 across the segment boundary
    assert not any({int(r[0]), int(r[1])} == {2, 3} for r in z)


@pytest.fixture(scope="module")
def heldout_results(adapter: PairTextClassifierAdapter) -> tuple[explain.Results, list[tuple[list[str], list[str], int, int | None]]]:
    rows = _heldout(22)
    inputs = [{"text": " ".join(p), "text_pair": " ".join(h)} for p, h, _, _ in rows]
    results = explain.explain(adapter, inputs, methods=["ig", "shap", "lime", "ablation", "attention"])
    return results, rows


@pytest.mark.parametrize("method", ["ig", "shap", "lime", "ablation"])
def test_planted_word_of_the_hypothesis_is_top_1(heldout_results: Any, method: str) -> None:
    results, rows = heldout_results
    hits, total = 0, 0
    for e in results.by_method(method):
        premise, hyp, label, cue = rows[e.input]
        if results.inputs[e.input].prediction.index != label:
            continue
        total += 1
        planted = len(premise) + cue  # the feature index of the hypothesis cue
        assert list(e.extras["segment"]) == [0] * len(premise) + [1] * len(hyp)
        hits += int(np.argmax(e.scores)) == planted
    assert total >= 20
    assert hits / total >= 0.9, f"{method}: the hypothesis cue is top-1 in {hits}/{total}"


def test_attention_runs_on_pairs_and_reads_the_cls_row(heldout_results: Any) -> None:
    results, rows = heldout_results
    att = results.by_method("attention")
    assert len(att) == len(rows)
    for e in att:
        premise, hyp, _, _ = rows[e.input]
        assert len(e.features) == len(premise) + len(hyp)
        assert e.extras["answer_row"] == 0 and e.extras["tokens"].count("[SEP]") == 2


def test_pair_record_and_results_file_keep_both_texts(heldout_results: Any, tmp_path: Path) -> None:
    results, rows = heldout_results
    rec = results.inputs[0]
    hyp = " ".join(rows[0][1])
    assert rec.text == " ".join(rows[0][0])
    assert rec.text_pair == hyp
    path = explain.save(results, tmp_path / "results.json")
    back = explain.open_results(path)
    assert back.inputs == results.inputs and len(back) == len(results)
    for a, b in zip(back, results):  # attention maps are kept as float16 in the arrays file (results-file.md)
        if a.method != "attention":
            assert a == b
            continue
        assert a.features == b.features and np.array_equal(a.scores, b.scores) and a.extras.keys() == b.extras.keys()
        for key in FLOAT16 & b.extras.keys():
            np.testing.assert_allclose(a.extras[key], b.extras[key], atol=2**-11, rtol=0)
    assert back.inputs[0].text_pair == hyp
    assert list(back[0].extras["segment"]) == list(results[0].extras["segment"])


def test_token_types_reach_the_model(adapter: PairTextClassifierAdapter) -> None:
    # the same pair scored through the adapter equals the model called directly with token types,
    # and differs from a call without them (so a lost token_type_ids would be caught)
    text, pair = "the true dog", "a cat false"
    ex = adapter.prepare({"text": text, "text_pair": pair}, 0)
    enc = adapter.tokenizer(text, pair, return_tensors="pt")
    with torch.no_grad():
        direct = torch.softmax(adapter.model(**enc).logits, -1)[0].numpy()
        untyped = torch.softmax(adapter.model(input_ids=enc["input_ids"]).logits, -1)[0].numpy()
    np.testing.assert_allclose(ex.probs, direct, atol=1e-5)
    assert np.abs(untyped - direct).max() > 1e-3


def test_perturbation_rows_keep_token_types_when_words_are_dropped(adapter: PairTextClassifierAdapter) -> None:
    ex = adapter.prepare(("the dog", "cat true"), 0)
    t = adapter.targets(ex)[0]
    view = adapter.perturbation_view(ex, t, baseline="drop")
    keep = np.array([[True, False, True, True]])  # drop "dog" (premise)
    enc = adapter.tokenizer("the", "cat true", return_tensors="pt")
    with torch.no_grad():
        direct = torch.softmax(adapter.model(**enc).logits, -1)[0, t.index].item()
    assert view.evaluate(keep)[0] == pytest.approx(direct, abs=1e-5)
    assert view.extras["segment"] == [0, 0, 1, 1]


def test_ig_on_pairs_matches_captum(adapter: PairTextClassifierAdapter) -> None:
    # captum on a forward written here from the HF model (ids, token types, [MASK] baseline with
    # the special tokens kept), the same 32 Gauss-Legendre points: scores within 1e-4 of max|score|.
    from captum.attr import IntegratedGradients

    text, pair = "the true dog", "a cat false"
    res = explain.explain(adapter, [{"text": text, "text_pair": pair}], methods="ig", ig={"adaptive": False, "n_steps": 32, "baseline": "mask"})
    e = res[0]
    model, tok = adapter.model, adapter.tokenizer
    enc = tok(text, pair, return_tensors="pt", return_special_tokens_mask=True)
    ids, special = enc["input_ids"], enc["special_tokens_mask"].bool()
    emb = model.get_input_embeddings()
    base_ids = torch.where(special, ids, torch.full_like(ids, tok.mask_token_id))

    def forward(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        out = model(inputs_embeds=x, token_type_ids=enc["token_type_ids"].expand(n, -1), attention_mask=torch.ones(n, ids.shape[1], dtype=torch.long))
        return torch.softmax(out.logits, -1)[:, e.target.index]

    with torch.no_grad():
        x, base = emb(ids), emb(base_ids)
    attr = IntegratedGradients(forward).attribute(x, baselines=base, n_steps=32, method="gausslegendre").sum(-1)[0]
    words = [[1], [2], [3], [5], [6], [7]]  # [CLS] the true dog [SEP] a cat false [SEP]
    ref = np.array([attr[w].sum().item() for w in words])
    assert e.features == ("the", "true", "dog", "a", "cat", "false")
    np.testing.assert_allclose(e.scores, ref, rtol=0, atol=1e-4 * np.abs(ref).max() + 1e-8)


def test_bad_pairs_fail_alone(adapter: PairTextClassifierAdapter) -> None:
    res = explain.explain(adapter, [{"text": "the dog", "text_pair": ""}, ("the dog", "cat true"), {"text": "x", "hypothesis": "y"}], methods="ablation", errors="record")
    assert [f.input for f in res.failures] == [0, 2]
    assert "empty" in res.failures[0].error and "keys" in res.failures[1].error
    assert len(res) == 1
    failed = next(r for r in res.inputs if r.index == 0)
    assert (failed.text, failed.text_pair, failed.note) == ("the dog", "", "failed")  # which pair failed stays visible


def test_single_texts_still_work_on_the_pair_adapter(adapter: PairTextClassifierAdapter) -> None:
    res = explain.explain(adapter, ["the dog true"], methods="ablation")
    assert res[0].features == ("the", "dog", "true") and "segment" not in res[0].extras
    assert not isinstance(adapter.prepare("the dog", 0).state, PairTokenized)


# ---- input files ---------------------------------------------------------------------------


def test_jsonl_and_csv_pairs(tmp_path: Path) -> None:
    jl = tmp_path / "pairs.jsonl"
    jl.write_text(
        json.dumps({"text": "a b", "text_pair": "c d"}) + "\n" + json.dumps({"text": "e"}) + "\n"
        + json.dumps({"text": "f", "text_pair": 3}) + "\n",
        encoding="utf-8",
    )
    items = read_file(str(jl))
    assert items[0] == {"text": "a b", "text_pair": "c d"} and items[1] == "e"
    assert "text_pair" in items[2].error
    csvf = tmp_path / "pairs.csv"
    csvf.write_text("premise,hypothesis\nthe dog,cat true\nx,\n", encoding="utf-8")
    items = read_file(str(csvf), "premise", pair_column="hypothesis")
    assert items[0] == {"text": "the dog", "text_pair": "cat true"}
    assert items[1] == {"text": "x", "text_pair": ""}  # an empty pair fails later, alone, at prepare
    with pytest.raises(InputError, match="no column 'nope'"):
        read_file(str(csvf), "premise", pair_column="nope")
    parts = plan([FileInput(str(csvf), "premise", pair_column="hypothesis")])
    assert parts[0].read()[0] == {"text": "the dog", "text_pair": "cat true"}


# ---- after wiring (notes/hooks_h-pairs.md) ---------------------------------------------------
# Each test below needs a change in a file h-pairs does not own. Until the hook is in, the test
# is a strict xfail (it must fail); once the probe sees the hook, it runs as a plain test.


def _hooked_loading() -> bool:
    from explain.loading.checkpoint import family_of_class

    return family_of_class("BertForTokenClassification") == "text-classifier"


def _hooked_engine() -> bool:
    import inspect

    return "text_pair" in inspect.signature(explain.explain).parameters


def _hooked_cli() -> bool:
    from explain.cli.main import build_parser

    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # argparse prints its usage on an unknown flag
            build_parser().parse_args(["run", "x", "--text-pair", "y", "--pair-column", "z"])
    except SystemExit:
        return False
    return True


def _hooked_record() -> bool:
    from explain.results.explanation import InputRecord

    return "text_pair" in InputRecord.__dataclass_fields__


def needs(probe: Any, hook: str) -> Any:
    """Mark a test that needs `hook` of notes/hooks_h-pairs.md: strict xfail until `probe()` sees it."""
    return pytest.mark.xfail(not probe(), reason=f"needs {hook} of notes/hooks_h-pairs.md", strict=True)


@pytest.fixture(scope="module")
def saved_pair_model(trained: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pair-bert")
    trained[0].save_pretrained(folder)
    trained[1].save_pretrained(folder)
    return folder


@needs(_hooked_loading, "H1 (loading)")
def test_load_gives_the_pair_adapter(saved_pair_model: Path) -> None:
    model = explain.load(saved_pair_model, device="cpu")
    assert isinstance(model, PairTextClassifierAdapter)
    res = explain.explain(model, [{"text": "the dog true", "text_pair": "a cat false"}], methods="ablation")
    assert res[0].extras["segment"] == [0, 0, 0, 1, 1, 1] and res.inputs[0].prediction.label == "contradiction"


@needs(_hooked_engine, "H3 (engine text_pair=)")
def test_api_text_pair_keyword(adapter: PairTextClassifierAdapter) -> None:
    res = explain.explain(adapter, "the dog true", text_pair="a cat false", methods="ablation")  # type: ignore[call-arg]
    assert res[0].features == ("the", "dog", "true", "a", "cat", "false") and res.inputs[0].prediction.label == "contradiction"


@needs(_hooked_record, "H5 (InputRecord.text_pair)")
def test_input_record_keeps_the_pair(heldout_results: Any, tmp_path: Path) -> None:
    from explain.results.results_io import read_file as read_results, save

    results, rows = heldout_results
    assert results.inputs[0].text_pair == " ".join(rows[0][1])  # type: ignore[attr-defined]
    assert read_results(save(results, tmp_path / "r.json")).inputs[0] == results.inputs[0]


@pytest.mark.slow
@needs(lambda: _hooked_cli() and _hooked_loading(), "H1 (loading) and H4 (CLI --text-pair, --pair-column)")
def test_cli_text_pair_and_pair_column(saved_pair_model: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    out = tmp_path / "a"
    done = run_cli("run", str(saved_pair_model), "--text", "the dog true", "--text-pair", "a cat false", "--methods", "ig,shap", "--out", str(out), "--no-report", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["explanations"][0]["extras"]["segment"] == [0, 0, 0, 1, 1, 1]
    csvf = tmp_path / "pairs.csv"
    csvf.write_text("premise,hypothesis\nthe dog true,a cat false\nthe cat,\n", encoding="utf-8")
    out = tmp_path / "b"
    done = run_cli("run", str(saved_pair_model), "--input", str(csvf), "--column", "premise", "--pair-column", "hypothesis", "--methods", "lime", "--out", str(out), "--no-report", "--device", "cpu")
    assert done.returncode in (0, 1), done.stderr  # the empty second text fails alone
    res = json.loads((out / "results.json").read_text())
    assert len(res["explanations"]) == 1 and [f["input"] for f in res["failures"]] == [1]
    top = int(np.argmax(res["explanations"][0]["scores"]))
    assert res["explanations"][0]["features"][top] == "false" and res["explanations"][0]["extras"]["segment"][top] == 1


def _hooked_metrics() -> bool:
    import inspect

    from explain.metrics import evaluation

    return _hooked_record() and "text_pair" in inspect.getsource(evaluation)


@needs(_hooked_metrics, "H5 (InputRecord.text_pair) and H7 (metrics re-prepare pairs)")
def test_metrics_score_pairs(adapter: PairTextClassifierAdapter) -> None:
    from explain.metrics import evaluate

    rows = _heldout(3)
    res = explain.explain(adapter, [{"text": " ".join(p), "text_pair": " ".join(h)} for p, h, _, _ in rows], methods=["ig", "ablation"])
    scored = evaluate(adapter, res, metrics="faithfulness")
    # removing the top word (the hypothesis cue) first must cost more than removing words at random
    for e in scored:
        assert e.metrics["comprehensiveness"] > e.metrics["comprehensiveness_random"]
