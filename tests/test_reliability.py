"""Reliability: interrupts keep finished work, resume completes it, failures leave no state behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explain
from explain.errors import InputError
from explain.results.results_io import dumps, loads

from conftest import ROOT, blocking_env, ctrl_c_default, interrupt, run_cli


def test_interrupt_keeps_finished_inputs_and_resume_completes(tiny_bert: Path, tmp_path: Path) -> None:
    # The run blocks by itself once its first flush has written results.json (blocking_env), so
    # the interrupt always lands mid-run, however fast the machine.
    texts = [f"the movie {'was ' * (i % 5)}great number {i}" for i in range(200)]
    data = tmp_path / "in.txt"
    data.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "explain.cli.main", "run", str(tiny_bert), "--input", str(data), "--methods", "ig,lime",
           "--set", "lime.num_samples=400", "--out", str(out), "--no-report", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=blocking_env(out / "results.json", 1), stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    deadline = time.time() + 120
    while not (out / "results.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # the run is blocked now: nothing can finish after results.json appeared
    err = interrupt(proc, timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    partial = explain.open_results(out / "results.json")
    finished = {r.index for r in partial.inputs}
    assert 0 < len(finished) < len(texts)
    for i in finished:  # every saved input is complete: both methods present
        assert {e.method for e in partial.for_input(i)} == {"ig", "lime"}

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    resumed = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    full = explain.open_results(out / "results.json")
    assert [r.index for r in full.inputs] == list(range(len(texts)))
    assert len(full) == 2 * len(texts)
    kept = [e for e in full if e.input in finished]
    assert all(a == b for a, b in zip(kept, [e for e in partial if e.input in finished]))


def test_resume_refuses_a_different_job(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run_cli("run", str(tiny_bert), "--text", "a great film", "--out", str(out), "--no-report").returncode == 0
    proc = run_cli("run", str(tiny_bert), "--text", "a great film", "--seed", "9", "--out", str(out), "--resume")
    assert proc.returncode == 2 and "cannot resume" in proc.stderr and "seed" in proc.stderr


def _hooks(model: torch.nn.Module) -> int:
    """Count hooks, leaving out transformers' own output-capturing hooks: it installs them once,
    on the first call that asks for attentions, and keeps them for every later call."""
    hooks = [h for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks) for h in d.values()]
    return sum("output_capturing" not in getattr(h, "__module__", "") for h in hooks)


@pytest.mark.parametrize("method", ["ig", "attention", "shap", "lime", "ablation"])
def test_no_hook_or_gradient_state_survives_a_failed_method(tiny_bert: Path, method: str) -> None:
    model = explain.load(tiny_bert, device="cpu")
    impl = model.model.config._attn_implementation
    before = _hooks(model.model)
    calls = {"n": 0}
    original = model.model.forward

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 1:  # the first call is the input's prediction; fail inside the method
            raise RuntimeError("simulated failure inside the model")
        return original(*args, **kwargs)

    model.model.forward = failing  # type: ignore[method-assign]
    res = explain.explain(model, ["the movie was unwatchable and awful"], methods=[method], errors="record")
    model.model.forward = original  # type: ignore[method-assign]
    assert res.failures and "simulated failure" in res.failures[0].error
    assert _hooks(model.model) == before
    assert model.model.config._attn_implementation == impl
    assert all(p.grad is None for p in model.model.parameters())
    assert torch.is_grad_enabled()
    # the model still explains correctly afterwards
    [e] = explain.explain(model, ["a great film"], methods=["ig"])
    assert e.checks["delta_relative"] < 0.01


TEXT_CHARS = st.characters(blacklist_categories=("Cs",))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(TEXT_CHARS, max_size=60) | st.just("x" * 300) | st.just("\x00\x1b[31m\t"), min_size=1, max_size=4))
def test_any_text_is_explained_or_fails_alone(tiny_bert: Path, texts: list[str]) -> None:
    model = _cached_model(tiny_bert)
    res = explain.explain(model, texts, methods=["ig"], max_length=32, errors="record")
    failed = {f.input for f in res.failures}
    for i, t in enumerate(texts):
        if i in failed:
            continue
        [e] = res.for_input(i)
        assert np.isfinite(e.scores).all() and len(e.features) == len(e.scores) > 0
    assert loads(dumps(res)) == res


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(TEXT_CHARS, max_size=40), max_size=6))
def test_any_input_file_reads_or_records_failures(tmp_path: Path, lines: list[str]) -> None:
    from explain.cli.inputs import read_input_file
    from explain.running.engine import InvalidInput

    for suffix, text in ((".txt", "\n".join(lines)), (".jsonl", "\n".join(lines)), (".csv", "text\n" + "\n".join(lines))):
        path = tmp_path / f"in{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            items = read_input_file(str(path))
        except InputError:
            continue
        assert all(isinstance(x, (str, dict, InvalidInput)) for x in items)


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.text(max_size=200), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                                                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=12)))
def test_any_results_file_loads_or_is_an_input_error(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    path = tmp_path_factory.mktemp("r") / "results.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    try:
        explain.open_results(path)
    except InputError:
        pass


_MODELS: dict[Path, object] = {}


def _cached_model(path: Path):  # type: ignore[no-untyped-def]
    if path not in _MODELS:
        _MODELS[path] = explain.load(path, device="cpu")
    return _MODELS[path]


def test_bad_images_fail_alone_through_the_cli(tmp_path: Path) -> None:
    from PIL import Image

    cnn = ROOT / "examples" / "models" / "digits-cnn"
    if not (cnn / "config.json").exists():
        pytest.skip("bundled digits-cnn missing")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)).save(folder / "a-good.png")
    (folder / "b-fake.png").write_text("this is not an image")
    good = (folder / "a-good.png").read_bytes()
    (folder / "c-truncated.png").write_bytes(good[: len(good) // 2])
    Image.new("RGBA", (33, 21), (255, 0, 0, 128)).save(folder / "d-rgba.png")
    out = tmp_path / "out"
    proc = run_cli("run", str(cnn), "--image", str(folder), "--image", str(tmp_path / "missing.png"), "--methods", "ig,gradcam", "--out", str(out), "--no-report")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads((out / "results.json").read_text())
    failed = {f["input"]: f["error"] for f in doc["failures"]}
    assert set(failed) == {1, 2, 4}, failed
    assert sorted({e["input"] for e in doc["explanations"]}) == [0, 3]
    shapes = {e["input"]: tuple(e["scores"]["shape"]) for e in doc["explanations"]}  # pixel maps live in the arrays file
    assert shapes[0] == (40, 50) and shapes[3] == (21, 33)


def test_malformed_csv_line_fails_alone(tiny_bert: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("id,review\n1,a great film\n2\n3,the plot was bad\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("run", str(tiny_bert), "--input", str(data), "--column", "review", "--out", str(out), "--no-report")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert [f["input"] for f in doc["failures"]] == [1]
    assert sorted({e["input"] for e in doc["explanations"]}) == [0, 2]


def test_out_of_memory_halves_the_batch_then_says_so() -> None:
    from explain.errors import ExplainError
    from explain.execution.runner import Runner

    runner = Runner(torch.device("cpu"), batch_size=64)
    sizes: list[int] = []

    def fn(batch: list[int]) -> torch.Tensor:
        sizes.append(len(batch))
        if len(batch) > 16:
            raise torch.OutOfMemoryError("simulated")
        return torch.tensor(batch, dtype=torch.float32)

    out = runner.map(list(range(100)), fn)
    assert out.tolist() == list(range(100))
    assert sizes[:3] == [64, 32, 16] and runner.batch_size == 16 and runner.rows == 100

    def never(batch: list[int]) -> torch.Tensor:
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(ExplainError, match="out of memory even with batch size 1"):
        Runner(torch.device("cpu"), batch_size=4).map([1, 2], never)
