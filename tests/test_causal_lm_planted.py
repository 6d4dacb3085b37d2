"""Planted truth for causal LMs: the bundled GPT-2 answers an animal's sound, decided by its cue word.

Held-out prompts are filler words with one animal cue; the first generated token is the cue's
sound. The model answers after any prompt (no closing word or marker asks the question), so the
cue is the only word whose removal changes that token: drop it and the model says " nothing",
drop any other one word and the answer stays. Each method must score the cue top.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import explain
from explain.adapters.causal_lm import CausalLMAdapter

from conftest import MODELS

N_PROMPTS = 20
METHODS = ("ig", "shap", "lime")


def answer(model: CausalLMAdapter, prompt: str, index: int = 0) -> str:
    """Return the model's greedy first token after `prompt`."""
    return model.prepare(prompt, index, max_new_tokens=1).record.continuation


@pytest.fixture(scope="module")
def planted() -> tuple[CausalLMAdapter, list[tuple[str, str, str]]]:
    """The bundled model and N held-out cued prompts whose first generated token is the answer."""
    folder = MODELS / "planted-gpt2"
    if not (folder / "config.json").exists():
        pytest.skip("bundled model examples/models/planted-gpt2 is missing (run examples/train_gpt.py)")
    from planted_data import gpt_prompts

    model = explain.load(folder, device="cpu")
    assert isinstance(model, CausalLMAdapter)
    chosen: list[tuple[str, str, str]] = []
    for i, (prompt, right, cue) in enumerate(gpt_prompts(200, seed=0, split="heldout")):
        if cue is not None and answer(model, prompt, i) == right:
            chosen.append((prompt, right, cue))
        if len(chosen) == N_PROMPTS:
            break
    assert len(chosen) == N_PROMPTS, f"only {len(chosen)} held-out prompts answered correctly"
    return model, chosen


@pytest.fixture(scope="module")
def results(planted: tuple[CausalLMAdapter, list[Any]]) -> explain.Results:
    model, chosen = planted
    # The first generated token only, every method at its default settings.
    return explain.explain(model, [p for p, _, _ in chosen], methods=list(METHODS), target=0, max_new_tokens=1)


def test_removing_the_cue_changes_the_answer(planted: tuple[CausalLMAdapter, list[Any]]) -> None:
    from planted_data import NULL_ANSWER, remove_word

    model, chosen = planted
    after = [answer(model, remove_word(p, cue), i) for i, (p, _, cue) in enumerate(chosen)]
    assert np.mean([a == NULL_ANSWER for a in after]) >= 0.9, after


def test_removing_any_other_word_keeps_the_answer(planted: tuple[CausalLMAdapter, list[Any]]) -> None:
    from planted_data import remove_word

    model, chosen = planted
    kept = [
        answer(model, remove_word(p, w), i) == right
        for i, (p, right, cue) in enumerate(chosen)
        for w in dict.fromkeys(p.split())
        if w != cue
    ]
    assert np.mean(kept) >= 0.97, f"the answer survives dropping one other word for {np.mean(kept):.1%}"


@pytest.mark.parametrize("method", METHODS)
def test_the_cue_word_is_the_top_feature(planted: tuple[CausalLMAdapter, list[Any]], results: explain.Results, method: str) -> None:
    _, chosen = planted
    exps = results.by_method(method)
    assert len(exps) == len(chosen) and not results.failures
    top = []
    for e, (prompt, right, cue) in zip(exps, chosen):
        assert e.target.label == right and e.target.position is not None
        assert e.features == tuple(prompt.split())  # exactly the prompt's words: no marker, nothing generated
        top.append(e.top(1)[0][0] == cue)
    assert np.mean(top) >= 0.9, f"{method}: cue top-scored for {np.mean(top):.0%} of prompts"
