"""The zoo, causal LMs: written as tutorials and courses write them, each through the Python API
(`from_model`) and through `explain pack` + `explain run` as subprocesses. Each generates the
model's own greedy token with the model's own probability, and its IG of that token's
log-probability equals captum's on the same model.

Before issue 24 PyTorch's own word_language_model (input (T, B)) was silently wrong: its
(T, B, V) output fit the (B, T, V) contract, every token was scored without its context (a
different generated token, IG on the last word only); nanoGPT's GPT(GPTConfig) with a plain
state dict and no --arch-args failed to build.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import explain
from explain.errors import ExplainWarning

from zoo_kit import CLI_IG, IG_SETTINGS, PROMPT, VOCAB, Style, assert_close, build, direct_text, ids_of, packed, run_folder, text_ig, tokenizer_path

STYLES = [
    Style("word-language-model", "lms.py", "TransformerModel", "causal-lm", {"ntoken": len(VOCAB)}, kind="logprobs",
          sequence_first=True, embedding="input_emb"),
    Style("nanogpt-no-arch-args", "lms.py", "GPT", "causal-lm", embedding="transformer.wte"),
    Style("rotary-tied", "lms.py", "RotaryLM", "causal-lm", {"vocab_size": len(VOCAB)}, embedding="tok_embeddings"),
    Style("lecture-gpt", "lms.py", "LectureGPT", "causal-lm", {"vocab_size": len(VOCAB)}, embedding="token_embedding_table"),
]


def _check(style: Style, res: explain.Results) -> None:
    """The generated token is the model's greedy one, with its probability; IG equals captum's."""
    ids = torch.tensor([ids_of(PROMPT)])
    logp = direct_text(style, ids)[0, -1].detach()  # (V,) after the prompt, the model called directly
    want = int(torch.argmax(logp))
    first = {e.target.index for e in res.by_method("ig") if e.target.position == ids.shape[1]}
    assert first == {want}, f"generated token {first}, the model's own greedy token is {want}"
    [ig] = [e for e in res.by_method("ig") if e.target.index == want and e.target.position == ids.shape[1]]
    assert ig.target.probability == pytest.approx(float(logp[want].exp()), abs=1e-5)
    assert_close(ig.scores, text_ig(style, PROMPT, want), rel=1e-4)


@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_api_generates_as_the_model_and_ig_equals_captum(style: Style) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExplainWarning)
        model = explain.from_model(build(style), str(tokenizer_path()), family="causal-lm", device="cpu")
    res = explain.explain(model, [PROMPT], methods=["ig"], max_new_tokens=1, ig=IG_SETTINGS)
    assert not res.failures, res.failures
    _check(style, res)


@pytest.mark.slow  # about 6 s a style on an idle 2-core machine: two processes that import torch
@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_cli_pack_and_run_generate_as_the_model(style: Style, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, proc = packed(style)  # nanoGPT: no --arch-args, GPT(GPTConfig()) as its defaults
    assert proc.returncode == 0, proc.stderr
    run = run_folder(folder, tmp_path / "out", "--prompt", PROMPT, "--max-new-tokens", "1", "--methods", "ig", *CLI_IG)
    assert run.returncode == 0, run.stderr
    _check(style, explain.open_results(tmp_path / "out" / "results.json"))


def test_a_sequence_first_lm_is_read_so_and_said_so() -> None:
    style = STYLES[0]
    with pytest.warns(ExplainWarning, match=r"read as sequence-first.*its output rows changed when another row was in the batch"):
        model = explain.from_model(build(style), str(tokenizer_path()), family="causal-lm", device="cpu")
    ids = torch.tensor([ids_of(PROMPT), ids_of("a dull plot but")])
    got = model.model(input_ids=ids).logits  # (B, T, V), each row with its own context
    for i in range(2):
        assert_close(torch.log_softmax(got[i], -1).detach().numpy(), direct_text(style, ids[i : i + 1])[0].detach().numpy(), rel=1e-5)


def test_lecture_heads_give_causal_attention_maps() -> None:
    style = STYLES[3]
    model = explain.from_model(build(style), str(tokenizer_path()), family="causal-lm", device="cpu")
    res = explain.explain(model, [PROMPT], methods=["attention"], max_new_tokens=2)
    assert not res.failures, res.failures
    maps = np.asarray(res.by_method("attention")[0].extras["token_attention"])
    assert maps.shape[:2] == (2, 2)  # 2 layers x 2 heads from four (B, T, T) softmax calls
    assert np.allclose(maps.sum(-1), 1.0, atol=1e-5) and np.allclose(np.triu(maps, 1), 0.0)
