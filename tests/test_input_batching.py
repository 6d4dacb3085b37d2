"""Inputs explained side by side (batch_inputs=K) give what one input at a time gives.

Scores within 1e-5, the same rows and cached rows per input, the same order of results and
failures; the caller's RNG is untouched; one failing input fails alone; Ctrl-C stops the
threads; the CLI flag is checked before the model loads.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.running.engine import run
from explain.errors import ExplainError
from explain.running.input_batching import resolve

from conftest import MODELS, ROOT, run_cli

TEXTS = [
    "a great film",
    "the plot was dull and the acting was terrible from start to end",
    "i loved it",
    "the cast was fine but the story dragged on for far too long in the middle",
    "awful",
    "a warm and funny film with a wonderful cast",
    "not my kind of movie at all",
    "the music was great",
    "boring scenes one after another with nothing to say",
]


def _same(a: explain.Results, b: explain.Results) -> None:
    """Assert two runs hold the same explanations (scores within 1e-5), costs and failures."""
    assert [(e.input, e.method, e.target.index) for e in a] == [(e.input, e.method, e.target.index) for e in b]
    for x, y in zip(a, b):
        assert x.features == y.features
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-5, atol=1e-5, err_msg=f"input {x.input} {x.method}")
        assert (x.rows, x.cached_rows) == (y.rows, y.cached_rows), f"input {x.input} {x.method}"
        assert x.checks.keys() == y.checks.keys()
    assert [r.index for r in a.inputs] == [r.index for r in b.inputs]
    assert [(f.input, f.method) for f in a.failures] == [(f.input, f.method) for f in b.failures]


@pytest.fixture(scope="module")
def bert() -> Any:
    path = MODELS / "sentiment-bert"
    if not (path / "config.json").exists():
        pytest.skip("bundled sentiment-bert missing")
    return explain.load(path, device="cpu")


@pytest.mark.parametrize("baseline", [None, "drop"])  # drop: rows of many lengths, padded side by side
def test_text_classifier_equals_one_at_a_time(bert: Any, baseline: str | None) -> None:
    methods = ["shap", "lime", "ablation"] + (["ig"] if baseline is None else [])  # IG cannot drop words
    one = explain.explain(bert, TEXTS, methods, baseline=baseline, batch_inputs=1)
    four = explain.explain(bert, TEXTS, methods, baseline=baseline, batch_inputs=4)
    _same(one, four)
    assert one.run["batch_inputs"] == 1 and four.run["batch_inputs"] == 4
    assert len(four) == len(TEXTS) * len(methods)


def test_rows_share_model_calls(bert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from explain.execution.forward_batcher import ForwardBatcher

    seen: list[ForwardBatcher] = []
    original = ForwardBatcher.serve

    def serve(self: ForwardBatcher) -> None:
        seen.append(self)
        original(self)

    monkeypatch.setattr(ForwardBatcher, "serve", serve)
    explain.explain(bert, TEXTS[:4], ["lime"], batch_inputs=4)
    assert seen and seen[0].merged >= 4  # the four inputs' neighbours went through shared calls


def test_right_padding_does_not_change_a_row(bert: Any) -> None:
    short = list(bert.tokenizer("a great film")["input_ids"])
    longer = list(bert.tokenizer(TEXTS[3])["input_ids"])
    with torch.inference_mode():
        alone = bert.logits_of([short])
        padded = bert.logits_of([short, longer])[:1]
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-5)


class _MeanOfEveryToken(torch.nn.Module):
    """A classifier without an attention_mask input that averages every position: padding would change it."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, 16)
        self.head = torch.nn.Linear(16, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(input_ids).mean(1))


def test_model_without_a_mask_input_is_run_unpadded(bert: Any) -> None:
    model = explain.from_model(_MeanOfEveryToken(bert.tokenizer.vocab_size), bert.tokenizer, family="text-classifier",
                               embeddings="emb", labels=["neg", "pos"], device="cpu")
    one = explain.explain(model, TEXTS, ["shap", "lime"], baseline="drop", batch_inputs=1)
    three = explain.explain(model, TEXTS, ["shap", "lime"], baseline="drop", batch_inputs=3)
    _same(one, three)


def test_causal_lm_equals_one_at_a_time() -> None:
    path = MODELS / "planted-gpt2"
    if not (path / "config.json").exists():
        pytest.skip("bundled planted-gpt2 missing")
    lm = explain.load(path, device="cpu")
    prompts = (ROOT / "examples" / "demo_inputs" / "prompts.txt").read_text().splitlines()[:4]
    kw: dict[str, Any] = {"max_new_tokens": 2, "shap": {"max_evals": 60}, "lime": {"num_samples": 60}}
    one = explain.explain(lm, prompts, ["shap", "lime", "ablation"], batch_inputs=1, **kw)
    three = explain.explain(lm, prompts, ["shap", "lime", "ablation"], batch_inputs=3, **kw)
    _same(one, three)


def test_images_equal_one_at_a_time() -> None:
    path = MODELS / "digits-cnn"
    if not (path / "config.json").exists() and not any(path.glob("*")):
        pytest.skip("bundled digits-cnn missing")
    cnn = explain.load(path, device="cpu")
    images = sorted((ROOT / "examples" / "demo_inputs" / "digits").glob("*.png"))[:3]
    kw: dict[str, Any] = {"shap": {"max_evals": 80}, "lime": {"num_samples": 80}}
    one = explain.explain(cnn, [str(p) for p in images], ["shap", "lime", "occlusion"], batch_inputs=1, **kw)
    three = explain.explain(cnn, [str(p) for p in images], ["shap", "lime", "occlusion"], batch_inputs=3, **kw)
    _same(one, three)


def test_caller_rng_untouched(bert: Any) -> None:
    np.random.seed(123)
    torch.manual_seed(123)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    explain.explain(bert, TEXTS[:4], ["shap", "lime"], batch_inputs=4)
    assert (np.random.get_state()[1] == np_state).all() and torch.equal(torch.get_rng_state(), torch_state)


def _poisoned(bert: Any, monkeypatch: pytest.MonkeyPatch, word: str) -> None:
    """Make the model fail on batches holding `word`'s token (that input's methods; its prediction, one row, passes)."""
    poison = bert.tokenizer.convert_tokens_to_ids(word)
    original = type(bert).logits_of

    def logits_of(self: Any, rows: Any) -> torch.Tensor:
        if len(rows) > 1 and any(poison in list(r) for r in rows):
            raise RuntimeError("poisoned row")
        return original(self, rows)

    monkeypatch.setattr(type(bert), "logits_of", logits_of)


def test_one_failing_input_fails_alone(bert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [*TEXTS[:3], "", TEXTS[4]]  # input 3 fails at preparing
    ref = run(bert, texts, ["lime", "shap"], batch_inputs=1, warn=False)
    _poisoned(bert, monkeypatch, "loved")  # input 2 fails in its methods (after its prediction)
    got = run(bert, texts, ["lime", "shap"], batch_inputs=4, warn=False)
    one = run(bert, texts, ["lime", "shap"], batch_inputs=1, warn=False)
    _same(one, got)
    failed = {(f.input, f.method) for f in got.failures}
    assert (3, None) in failed and (2, "lime") in failed and (0, "lime") not in failed and len(got.by_method("lime")) >= 2
    keep = [e for e in ref if e.input not in {f.input for f in got.failures}]
    assert len(keep) == len([e for e in got if e.input not in {f.input for f in got.failures}])


def test_errors_raise_names_the_failing_input(bert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExplainError, match="input 3"):
        explain.explain(bert, [*TEXTS[:3], "", TEXTS[4]], ["lime"], batch_inputs=4)
    before = threading.active_count()
    _poisoned(bert, monkeypatch, "awful")
    with pytest.raises(RuntimeError, match="poisoned"):
        explain.explain(bert, TEXTS[:6], ["lime"], batch_inputs=3, lime={"num_samples": 40})
    assert threading.active_count() == before and bert.runner.batcher is None


def test_interrupt_stops_the_threads_and_keeps_finished_inputs(bert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[list[int]] = []
    original = type(bert).logits_of
    calls = {"n": 0}

    def logits_of(self: Any, rows: Any) -> torch.Tensor:
        calls["n"] += len(rows) > 1  # the shared calls: one per group of two (8 inputs a window)
        if calls["n"] == 5:  # the second window's first group: Ctrl-C lands in the thread that runs the model
            raise KeyboardInterrupt
        return original(self, rows)

    monkeypatch.setattr(type(bert), "logits_of", logits_of)
    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        run(bert, TEXTS * 2, ["lime"], batch_inputs=2, lime={"num_samples": 40}, warn=False,
                    on_input=lambda r: saved.append(sorted(x.index for x in r.inputs)))
    assert threading.active_count() == before and bert.runner.batcher is None
    assert saved and saved[-1] == list(range(8))  # the first window (4 x 2 inputs) was handed on whole


def test_resolve() -> None:
    assert resolve(3, "cpu", []) == 3 and resolve("5", "cpu", []) == 5
    assert resolve("auto", "cpu", []) == 1  # no batchable method: one at a time
    from explain.methods import REGISTRY

    assert resolve("auto", "cpu", [REGISTRY["shap"]]) == 1  # no CPU gain measured (benchmarks/batching.py)
    with pytest.raises(ExplainError):
        resolve(0, "cpu", [])


@pytest.mark.parametrize("bad", ["0", "abc"])
def test_cli_rejects_bad_values_in_one_line(bad: str, tmp_path: Path) -> None:
    proc = run_cli("run", str(MODELS / "sentiment-bert"), "--text", "a great film", "--batch-inputs", bad,
                   "--out", str(tmp_path / "o"), "--no-report")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "batch_inputs" in proc.stderr


def test_cli_records_the_setting(tmp_path: Path) -> None:
    if not (MODELS / "sentiment-bert" / "config.json").exists():
        pytest.skip("bundled sentiment-bert missing")
    data = tmp_path / "in.txt"
    data.write_text("\n".join(TEXTS[:4]) + "\n", encoding="utf-8")
    proc = run_cli("run", str(MODELS / "sentiment-bert"), "--input", str(data), "--methods", "lime",
                   "--lime-samples", "60", "--batch-inputs", "2", "--out", str(tmp_path / "o"), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["run"]["batch_inputs"] == 2
