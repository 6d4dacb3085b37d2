"""explain() leaves the caller's world as it found it: RNGs, threads, logging, the model's mode."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from explain.errors import InputError

TEXTS = ["a great film", "awful plot"]
FAST = {"ig": {"n_steps": 8, "adaptive": False}, "shap": {"max_evals": 20}}


def _states() -> tuple[torch.Tensor, tuple, object, int]:
    return torch.get_rng_state(), np.random.get_state(), random.getstate(), torch.get_num_threads()


def _assert_same(before: tuple[torch.Tensor, tuple, object, int]) -> None:
    torch_state, np_state, py_state, threads = before
    assert torch.equal(torch.get_rng_state(), torch_state), "torch's global RNG moved"
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and np.random.get_state()[2] == np_state[2], "numpy's RNG moved"
    assert random.getstate() == py_state, "Python's RNG moved"
    assert torch.get_num_threads() == threads


def test_rng_threads_and_logging_are_kept(tiny_bert: Path) -> None:
    model = explain.load(tiny_bert, device="cpu")
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    logging.getLogger("transformers").setLevel(logging.DEBUG)
    before = _states()
    explain.explain(model, TEXTS, methods=["ig", "shap", "lime"], lime={"num_samples": 50}, **FAST)
    _assert_same(before)
    assert logging.getLogger("transformers").level == logging.DEBUG
    # What the caller draws next is what it would have drawn without the run.
    torch.set_rng_state(before[0])
    expected = torch.rand(3)
    torch.set_rng_state(before[0])
    explain.explain(model, TEXTS, methods=["ig"], **{"ig": FAST["ig"]})
    assert torch.equal(torch.rand(3), expected)


def test_state_is_kept_when_the_run_raises(tiny_bert: Path) -> None:
    model = explain.load(tiny_bert, device="cpu")
    torch.manual_seed(7)
    before = _states()
    with pytest.raises(InputError, match="input 1"):
        explain.explain(model, ["a great film", 5, "fine"], methods=["shap"], shap={"max_evals": 20})
    _assert_same(before)


def test_results_do_not_depend_on_the_callers_rng(tiny_bert: Path) -> None:
    model = explain.load(tiny_bert, device="cpu")
    torch.manual_seed(1)
    np.random.seed(1)
    a = explain.explain(model, TEXTS, methods=["shap", "lime"], lime={"num_samples": 50}, **FAST)
    torch.manual_seed(99)
    np.random.seed(99)
    torch.rand(10)
    b = explain.explain(model, TEXTS, methods=["shap", "lime"], lime={"num_samples": 50}, **FAST)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.scores, y.scores)


def test_model_mode_is_kept_for_a_model_passed_unwrapped(tiny_bert: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    net = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    net.train()  # the caller is mid-training
    flags = [m.training for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    results = explain.explain((net, tok), TEXTS, methods=["ig"], **{"ig": FAST["ig"]})
    assert len(results) == 2
    assert [m.training for m in net.modules()] == flags
    assert [p.requires_grad for p in net.parameters()] == grads
    assert {p.device.type for p in net.parameters()} == {"cpu"}


def test_loading_keeps_transformers_logging(tiny_bert: Path) -> None:
    """load() silences transformers while it reads a folder, then gives the caller's settings back."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        explain.load(tiny_bert, device="cpu")
        assert hf_logging.get_verbosity() == hf_logging.INFO
        assert hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity_warning()
