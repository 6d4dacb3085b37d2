"""Planted truth for causal LMs: the bundled GPT-2 answers an animal's sound, decided by its cue word.

Held-out prompts are filler words with one animal cue, ending in "says"; the first generated
token is the cue's sound. Two words are causes of that token: the cue (drop it and the model
says " nothing") and the closing "says" (drop it and the prompt has not asked for a sound yet:
the model goes on with filler). The second is the template's own question mark, the same in
every prompt, so the planted cause each method must find is the cue: it must outscore every
other word of the prompt but the closing "says", and the two must be the top two features.
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
    for i, (prompt, answer, cue) in enumerate(gpt_prompts(200, seed=0, split="heldout")):
        if cue is not None and model.prepare(prompt, i, max_new_tokens=1).record.continuation == answer:
            chosen.append((prompt, answer, cue))
        if len(chosen) == N_PROMPTS:
            break
    assert len(chosen) == N_PROMPTS, f"only {len(chosen)} held-out prompts answered correctly"
    return model, chosen


@pytest.fixture(scope="module")
def results(planted: tuple[CausalLMAdapter, list[Any]]) -> explain.Results:
    model, chosen = planted
    # The first generated token only, every method at its default settings.
    return explain.explain(model, [p for p, _, _ in chosen], methods=list(METHODS), target=0, max_new_tokens=1)


def test_the_closing_says_is_a_cause_too(planted: tuple[CausalLMAdapter, list[Any]]) -> None:
    from planted_data import PROMPT_END, remove_word

    model, chosen = planted
    cued = [model.prepare(remove_word(p, PROMPT_END), i, max_new_tokens=1).record.continuation for i, (p, _, _) in enumerate(chosen)]
    assert np.mean([c != a for c, (_, a, _) in zip(cued, chosen)]) >= 0.9


@pytest.mark.parametrize("method", METHODS)
def test_the_cue_word_is_the_top_feature_besides_says(planted: tuple[CausalLMAdapter, list[Any]], results: explain.Results, method: str) -> None:
    _, chosen = planted
    exps = results.by_method(method)
    assert len(exps) == len(chosen) and not results.failures
    top, pair = [], []
    for e, (prompt, answer, cue) in zip(exps, chosen):
        assert e.target.label == answer and e.target.position is not None
        assert e.features == tuple(prompt.split())  # the prompt's words, nothing generated
        order = [f for f, _ in e.top(len(e.features))]
        top.append([f for f in order if f != "says"][0] == cue)
        pair.append(set(order[:2]) == {cue, "says"})
    assert np.mean(top) >= 0.9, f"{method}: cue top (besides 'says') for {np.mean(top):.0%} of prompts"
    assert np.mean(pair) >= 0.9, f"{method}: cue and 'says' the top two for {np.mean(pair):.0%} of prompts"
