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


# Every image method, at settings small enough for a fast test; IG with fixed steps so both
# sides integrate over the same points.
IMAGE_METHODS = {"occlusion": {}, "lime": {"num_samples": 300}, "shap": {"max_evals": 200}, "ig": {"n_steps": 16, "adaptive": False}}


class _CopyUse:
    """Wraps an adapter's `_fast_path` (the inference copy, used at a batch shape once it agreed
    with the model there): counts the rows the copy itself answered, and can hand out a planted
    copy for every batch, or no copy at all."""

    def __init__(self, adapter: object, monkeypatch: pytest.MonkeyPatch, give: str = "built", planted: torch.nn.Module | None = None) -> None:
        self.asked = self.rows = 0
        original = adapter._fast_path  # type: ignore[attr-defined]

        def use(x: torch.Tensor) -> torch.Tensor | None:
            self.asked += int(x.shape[0])
            if give == "none":
                return None
            if give == "planted":
                assert planted is not None
                self.rows += int(x.shape[0])
                return planted(x)
            path = original()
            if path is None:
                return None
            verified = path.shapes.get(tuple(x.shape)) is True and path.copy is not None
            out = path(x)
            self.rows += int(x.shape[0]) if out is not None and verified else 0  # a first call at a shape is the model's own
            return out

        monkeypatch.setattr(adapter, "_fast_path", lambda: use)


def _own_rows(model: torch.nn.Module) -> list[int]:
    """Count the rows the model's own forward runs (a forward hook; removed with the model)."""
    rows = [0]
    model.register_forward_pre_hook(lambda m, args: rows.__setitem__(0, rows[0] + int(args[0].shape[0])))
    return rows


def _compare_with_the_model_itself(fast_side: object, plain_side: object, monkeypatch: pytest.MonkeyPatch,
                                   planted: torch.nn.Module | None = None) -> dict[str, int]:
    """Explain one digit with every image method on both adapters: `fast_side` may use the
    inference copy (or `planted`), `plain_side` never builds one, so each of its rows runs the
    model's own forward (checked by a hook). Assert equal scores; return the rows the copy answered."""
    img = _digit()
    fast_use = _CopyUse(fast_side, monkeypatch, "planted" if planted is not None else "built", planted)
    plain_use = _CopyUse(plain_side, monkeypatch, "none")
    own = _own_rows(plain_side.model)  # type: ignore[attr-defined]
    copy_rows: dict[str, int] = {}
    for method, settings in IMAGE_METHODS.items():
        before_copy, before_fast, before_asked, before_own = fast_use.rows, fast_use.asked, plain_use.asked, own[0]
        [a] = explain.explain(fast_side, [img], methods=[method], **{method: settings})
        [b] = explain.explain(plain_side, [img], methods=[method], **{method: settings})
        copy_rows[method] = fast_use.rows - before_copy
        # the plain side was offered the copy for the same rows as the fast side, and ran them on the model
        assert plain_use.asked - before_asked == fast_use.asked - before_fast
        assert own[0] - before_own >= b.rows
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-3, atol=1e-5 * float(np.abs(b.scores).max()) + 1e-7, err_msg=method)
    return copy_rows


def test_image_methods_through_the_inference_copy_give_the_model_own_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Occlusion, LIME and SHAP rows go through the fused, channels-last copy; IG's gradient
    rows never do. Each method's scores equal the same method's on the model's own forward."""
    fast_side = explain.load(MODELS / "digits-cnn", device="cpu")
    plain_side = explain.load(MODELS / "digits-cnn", device="cpu")
    copy_rows = _compare_with_the_model_itself(fast_side, plain_side, monkeypatch)
    assert all(copy_rows[m] > 0 for m in ("occlusion", "lime", "shap")), copy_rows  # the copy was really used
    assert copy_rows["ig"] == 0, copy_rows  # gradients run on the model itself
    assert isinstance(fast_side._fast.copy, torch.nn.Module) and plain_side._fast is False  # type: ignore[attr-defined]


def test_the_comparison_sees_a_wrong_inference_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy whose one conv weight is off by 2% makes the comparison above fail: it can fail."""
    import copy

    fast_side = explain.load(MODELS / "digits-cnn", device="cpu")
    plain_side = explain.load(MODELS / "digits-cnn", device="cpu")
    wrong = copy.deepcopy(fast_side.model).eval()
    conv = next(m for m in wrong.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        conv.weight.mul_(1.02)
    with pytest.raises(AssertionError, match="occlusion"):
        _compare_with_the_model_itself(fast_side, plain_side, monkeypatch, planted=wrong)


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
