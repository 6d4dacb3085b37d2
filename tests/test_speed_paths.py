"""The speed paths give the same answers: the inference copy of a CNN, deduplicated
perturbations, input-only gradients and memory-capped IG chunks."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import explain
from explain.execution.fast_inference import fast_copy
from explain.gradients import frozen_parameters, saved_bytes_per_row
from explain.execution.runner import parse_size

from conftest import MODELS


@pytest.fixture(scope="module")
def cnn() -> explain.adapters.image.ImageClassifierAdapter:  # type: ignore[name-defined]
    return explain.load(MODELS / "digits-cnn", device="cpu")


def _digit() -> np.ndarray:
    import sys

    sys.path.insert(0, str(MODELS.parent))
    from planted_data import digit_images

    return next(img for img, _, box in digit_images(20, seed=5, split="heldout") if box is not None)


def test_the_inference_copy_folds_batchnorm_and_agrees(cnn) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(8, 1, 32, 32)
    fast = fast_copy(cnn.model, x)
    assert fast is not None
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # folded away
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in cnn.model.modules())  # the model is untouched
    with torch.inference_mode():
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), cnn.model(x), rtol=1e-4, atol=1e-5)


def test_an_untraceable_model_still_gets_a_checked_copy() -> None:
    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.head = torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > -1e9:  # data-dependent control flow: torch.fx cannot trace it
                x = self.bn(self.conv(x))
            return self.head(x.mean((2, 3)))

    model = Branchy().eval()
    fast = fast_copy(model, torch.rand(2, 1, 8, 8))
    assert fast is not None and fast is not model
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # not folded, still agrees


def test_a_model_the_copy_disagrees_with_is_used_as_it_is() -> None:
    class Noisy(torch.nn.Module):  # a different answer on every call: no copy can agree with it
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.randn_like(x)

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), Noisy()).eval()
    assert fast_copy(model, torch.rand(2, 1, 5, 5)) is None
    assert fast_copy(model.train(), torch.rand(2, 1, 5, 5)) is None  # nor for a model in training mode


def test_image_perturbation_methods_give_the_plain_model_answers(cnn, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    img = _digit()
    fast = explain.explain(cnn, [img], methods=["occlusion", "lime", "shap"], lime={"num_samples": 300}, shap={"max_evals": 200})
    plain_adapter = explain.load(MODELS / "digits-cnn", device="cpu")
    plain_adapter._fast = None  # type: ignore[attr-defined]  # never build the copy: the model itself
    plain = explain.explain(plain_adapter, [img], methods=["occlusion", "lime", "shap"], lime={"num_samples": 300}, shap={"max_evals": 200})
    assert cnn._fast is not None and cnn._fast is not False  # the copy was used
    for a, b in zip(fast, plain):
        assert a.method == b.method
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-3, atol=1e-5 * float(np.abs(b.scores).max()) + 1e-7)


def test_identical_perturbations_are_evaluated_once(cnn) -> None:  # type: ignore[no-untyped-def]
    ex = cnn.prepare(_digit(), 0)
    view = cnn.perturbation_view(ex, cnn.targets(ex)[0])
    d = len(view.features)
    keep = np.ones((10, d), dtype=bool)
    keep[5:, 0] = False  # two distinct rows, ten asked for
    before = cnn.runner.rows
    out = view.evaluate(keep)
    assert cnn.runner.rows - before == 2
    assert out.shape == (10,) and np.all(out[:5] == out[0]) and np.all(out[5:] == out[5]) and out[0] != out[5]


def test_frozen_parameters_are_restored_even_after_an_error(cnn) -> None:  # type: ignore[no-untyped-def]
    before = [p.requires_grad for p in cnn.model.parameters()]
    with pytest.raises(RuntimeError):
        with frozen_parameters(cnn.model):
            assert not any(p.requires_grad for p in cnn.model.parameters())
            raise RuntimeError("boom")
    assert [p.requires_grad for p in cnn.model.parameters()] == before


def test_saved_bytes_grow_with_the_input(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    model = explain.load(tiny_bert, device="cpu")
    sizes = []
    for n in (8, 32):
        ex = model.prepare(" ".join(["good"] * n), 0)
        view = model.gradient_view(ex, model.targets(ex)[0])
        with frozen_parameters(model.model):
            sizes.append(saved_bytes_per_row(view.forward, view.inputs, model.model))
    assert sizes[1] > 2.5 * sizes[0] > 0


def test_capped_ig_chunks_its_rows_and_gives_the_same_attributions(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(["a", "good", "film", "but", "a", "bad", "plot"] * 4)
    settings = {"n_steps": 40, "adaptive": False}
    free = explain.explain(explain.load(tiny_bert, device="cpu"), [text], methods=["ig"], ig=settings)[0]
    capped_model = explain.load(tiny_bert, device="cpu", max_memory="1MB")
    capped = explain.explain(capped_model, [text], methods=["ig"], ig=settings)[0]
    chunk = capped.settings["internal_batch_size"]
    assert 1 <= chunk < 40  # the 40 steps ran in several chunks
    np.testing.assert_allclose(capped.scores, free.scores, rtol=1e-4, atol=1e-7)
    assert capped.checks["convergence_delta"] == pytest.approx(free.checks["convergence_delta"], abs=1e-6)
    assert free.settings.get("internal_batch_size") is None  # recorded only when capped


@pytest.mark.parametrize("text,size", [("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), ("1.5g", 1_500_000_000), (4096, 4096)])
def test_memory_sizes_parse(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1GB", "0", "12 parsecs"])
def test_bad_memory_sizes_are_one_line_errors(bad: str) -> None:
    with pytest.raises(explain.ExplainError, match="memory size"):
        parse_size(bad)


def test_the_inference_copy_follows_weight_changes(cnn) -> None:  # type: ignore[no-untyped-def]
    import copy

    adapter = copy.deepcopy(cnn)
    x = torch.rand(4, 1, 32, 32)
    with torch.inference_mode():
        before = adapter.logits(x, fast=True)
    with torch.no_grad():
        for p in adapter.model.parameters():
            p.mul_(-0.5)  # in place, as the sanity check's randomisation does
    with torch.inference_mode():
        after, plain = adapter.logits(x, fast=True), adapter.logits(x)
    torch.testing.assert_close(after, plain, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(after, before)


def test_a_relu_shared_with_a_residual_stays_out_of_place() -> None:
    class Residual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.relu, self.head = torch.nn.Conv2d(2, 2, 3, padding=1), torch.nn.BatchNorm2d(2), torch.nn.ReLU(), torch.nn.Linear(2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.relu(x)  # x is read again below: this call must not overwrite it
            z = self.relu(self.bn(self.conv(y)))
            return self.head((z + x).mean((2, 3)))

    model = Residual().eval()
    probe = torch.randn(3, 2, 6, 6)
    fast = fast_copy(model, probe)
    assert fast is not None and not any(getattr(m, "inplace", False) for m in fast.modules())
    with torch.inference_mode():
        torch.testing.assert_close(fast(probe.contiguous(memory_format=torch.channels_last)), model(probe), rtol=1e-4, atol=1e-5)


def test_cpu_calls_hold_about_a_budget_of_activations() -> None:
    """On CPU with no batch size set, text rows of a model of known width go to it about
    4096 x 384 activation elements per call (8-256 rows); without a width, the flat batch size."""
    from explain.execution.runner import Runner

    runner = Runner(torch.device("cpu"))
    sizes: list[int] = []

    def fn(batch: list[list[int]]) -> torch.Tensor:
        sizes.append(len(batch))
        return torch.zeros(len(batch), 2)

    runner.map([[1] * 16] * 600, fn, key=len)
    assert max(sizes) == 64  # width unknown (an own model): the batch size
    for width, length, expected in [(384, 16, 256), (384, 20, 204), (384, 64, 64), (384, 256, 16), (384, 2000, 8),
                                    (768, 32, 64), (768, 20, 102), (4096, 512, 8)]:
        runner.width = width
        sizes.clear()
        runner.map([[1] * length] * 600, fn, key=len)
        assert max(sizes) == min(expected, 600), (width, length, sizes)
    sizes.clear()
    runner.map([torch.zeros(3)] * 100, fn)  # rows without a length (images): the batch size
    assert max(sizes) == 64
    fixed = Runner(torch.device("cpu"), batch_size=32)  # a set batch size is kept
    fixed.width = 384
    sizes.clear()
    fixed.map([[1] * 16] * 100, fn, key=len)
    assert max(sizes) == 32


def test_merged_calls_of_several_inputs_keep_the_cpu_budget() -> None:
    """Several inputs' calls run as one: on CPU with the budget, calls stay within it (8 inputs'
    LIME rows once went as calls of 8 x 204); without it (a set batch size, no width, GPU),
    the sum of the calls' sizes."""
    from explain.execution.forward_batcher import ForwardBatcher
    from explain.execution.runner import Runner

    sizes: list[int] = []

    def fn(batch: list[list[int]]) -> torch.Tensor:
        sizes.append(len(batch))
        return torch.tensor([[float(sum(r))] for r in batch])

    def merged(runner: Runner, inputs: int, length: int = 20, rows: int = 400) -> list[torch.Tensor]:
        batcher = ForwardBatcher(runner, inputs)
        runner.batcher = batcher
        outs: list[torch.Tensor] = [torch.empty(0)] * inputs

        def work(i: int) -> None:
            batcher.enter()
            try:
                outs[i] = runner.map([[i] * length] * rows, fn, key=len, share="logits")
            finally:
                batcher.leave()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(inputs)]
        for t in threads:
            t.start()
        batcher.serve()
        for t in threads:
            t.join()
        assert batcher.merged == inputs
        return outs

    runner = Runner(torch.device("cpu"))
    runner.width = 384
    outs = merged(runner, 8)
    assert max(sizes) == 204 and sum(sizes) == 8 * 400  # 4096 x 384 / (20 x 384), not 8 x 204
    assert all(torch.equal(o, torch.full((400, 1), 20.0 * i)) for i, o in enumerate(outs))
    for other in (Runner(torch.device("cpu")), Runner(torch.device("cpu"), batch_size=32)):
        sizes.clear()
        merged(other, 4, rows=100)
        assert max(sizes) == 4 * other.batch_size  # the sum of the four calls' sizes (64 or 32 each)


def test_the_loader_tells_the_runner_the_hidden_size(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    model = explain.load(tiny_bert, device="cpu")
    assert model.runner.width == 32  # conftest's tiny BERT


def test_an_out_of_memory_ends_the_token_budget() -> None:
    from explain.execution.runner import Runner

    runner = Runner(torch.device("cpu"))
    runner.width = 384
    sizes: list[int] = []

    def fn(batch: list[list[int]]) -> torch.Tensor:
        if len(batch) > 100:
            raise torch.OutOfMemoryError("injected: more than 100 rows")
        sizes.append(len(batch))
        return torch.arange(len(batch), dtype=torch.float32)[:, None]

    out = runner.map([[1] * 16] * 300, fn, key=len)
    assert out.shape == (300, 1) and max(sizes) == 64  # 256, then halved to 128, then 64
    assert runner.fixed and runner.batch_size == 64
    sizes.clear()
    runner.map([[1] * 16] * 300, fn, key=len)
    assert max(sizes) == 64  # later calls keep the size that fitted


def test_the_fast_copy_is_checked_at_each_batch_shape_and_never_fails_the_model() -> None:
    """A CIFAR-tutorial model flattens with x.view(-1, n), which channels-last activations cannot take:
    the copy falls back to the standard layout, is checked at each new batch shape, and a copy that
    fails at a shape is dropped there (the model answers), with nothing printed to stderr."""
    import contextlib
    import io

    from explain.execution.fast_inference import FastPath

    class ViewNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.fc = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4 * 6 * 6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.bn(self.conv(x))).view(-1, 4 * 6 * 6))

    model = ViewNet().eval()
    path = FastPath(model)
    err = io.StringIO()
    with torch.inference_mode(), contextlib.redirect_stderr(err):
        for rows in (4, 4, 3, 4):
            x = torch.rand(rows, 3, 8, 8)
            got = path(x)
            assert got is not None
            torch.testing.assert_close(got, model(x), rtol=1e-4, atol=1e-5)
    assert path.copy is not None and not path.channels_last  # channels-last failed: the standard layout
    assert set(path.shapes) == {(4, 3, 8, 8), (3, 3, 8, 8)} and all(path.shapes.values())
    assert err.getvalue() == ""  # torch.fx's traceback of the failed channels-last try is not shown
    # A copy that fails at a shape is dropped there: the caller runs the model (None), no error.
    original = path.copy.forward

    def broken(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 2:
            raise RuntimeError("boom")
        return original(x)

    path.copy.forward = broken  # type: ignore[method-assign]
    with torch.inference_mode():
        assert path(torch.rand(2, 3, 8, 8)) is not None  # first call at a shape: the model's own answer
        assert path.shapes[(2, 3, 8, 8)] is False and path(torch.rand(2, 3, 8, 8)) is None
