"""Shared fixtures: tiny checkpoints built in-process, the bundled models, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
sys.path.insert(0, str(ROOT / "examples"))  # planted_data: the generators behind the bundled models
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The test models are tiny: one thread avoids OpenMP hand-off costs that dominate their matmuls
# (the causal-LM tests take 34 s on one thread and 130 s or more on two).
torch.set_num_threads(1)

FILLER = "the a movie film was is plot acting story and with of it this that very some".split()
SENTIMENT = ["great", "awful", "good", "bad"]
PIECES = ["un", "##watch", "##able", "delight", "##ful", "##s", "##ing"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_vocab(extra: int = 0) -> dict[str, int]:
    """Return a WordPiece vocab with multi-piece words (and `extra` filler pieces up to real size)."""
    words = SPECIALS + FILLER + SENTIMENT + PIECES
    words += [f"w{i}" for i in range(extra)]
    return {w: i for i, w in enumerate(words)}


def save_bert(folder: Path, *, hidden: int = 32, heads: int = 4, layers: int = 2, extra_vocab: int = 0, seed: int = 0) -> Path:
    """Build a random BERT sequence classifier + WordPiece tokenizer and save it as an HF folder."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = bert_vocab(extra_vocab)
    tok = BertTokenizerFast(vocab=vocab)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    model = BertForSequenceClassification(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT classifier folder built for the tests."""
    return save_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def sentiment_bert() -> Path:
    """The bundled planted-truth sentiment classifier."""
    path = MODELS / "sentiment-bert"
    if not (path / "config.json").exists():
        pytest.skip("bundled model examples/models/sentiment-bert is missing (run examples/train_text_classifier.py)")
    return path


def blocking_env(pattern: Path | str, count: int) -> dict[str, str]:
    """Environment for a CLI subprocess whose model calls block forever once `count` files match
    `pattern` (tests/block_site/sitecustomize.py): an interrupt test then cannot race the run."""
    site = ROOT / "tests" / "block_site"
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
            "EXPLAIN_TEST_BLOCK_WHEN": f"{pattern}:{count}"}


def ctrl_c_default() -> None:
    """Popen preexec_fn: the child starts with Ctrl-C at its default, whatever the test runner has.

    A job started in the background (`make test &`, `nohup`) ignores SIGINT, and a child
    inherits that: Python then installs no KeyboardInterrupt handler and the Ctrl-C a test sends
    is dropped (as it should be for a background job). The interrupt tests set it back, so they
    test the CLI, not how the suite was started.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(proc: subprocess.Popen[str], timeout: float) -> str:
    """Press Ctrl-C once on a CLI subprocess; return its stderr. A run still going after
    `timeout` is killed (never left running) and the test fails."""
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the run was still going {timeout:.0f} s after Ctrl-C") from None


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `explain ARGS...` as a subprocess, as a user would; return the finished process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "explain.cli.main", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# `make test` (and so CI) sets EXPLAIN_NO_SKIP=1: a test that would skip because something it
# needs is missing (chromium, playwright, ray, a bundled model) fails instead, so a green run
# always means every test ran.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("EXPLAIN_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in a run that must not skip (EXPLAIN_NO_SKIP=1): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("EXPLAIN_NO_SKIP") == "1":
        report.outcome = "failed"
        report.longrepr = f"module skipped in a run that must not skip (EXPLAIN_NO_SKIP=1): {report.longrepr}"
