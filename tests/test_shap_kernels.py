"""Our numpy stand-ins for shap's three numba kernels equal shap's kernels, and shap is never changed.

shap_kernels runs shap's Partition explainer code on numpy versions of `make_masks`,
`_build_fixed_output` and `lower_credit` (saving seconds of JIT per process) by binding shap's own
functions to a private copy of their globals. If a stand-in differed - a leaf missing, children
swapped, a carried-over output row wrong, credit split by the wrong size - every SHAP value would
be wrong, so each is compared with shap's own kernel entry for entry, the end-to-end values with
shap's untouched path, and a fresh process checks that a SHAP run compiles none of shap's kernels.
Because nothing in shap is assigned, a user's own first shap call in another thread, while ours
runs, gets shap as installed: a fresh process makes exactly that happen and checks both answers.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.cluster.hierarchy
import shap
from shap.explainers import _partition
from shap.utils import _masked_model

from explain.adapters.base import contiguous_linkage
from explain.adapters.image import segment_linkage as image_linkage
from explain.adapters.pairs import segment_linkage as pair_linkage
from explain.methods import shap_kernels
from explain.methods.shap_kernels import explainer_class, fixed_output, leaf_masks, lower_credit


def _trees() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    trees = [contiguous_linkage(n) for n in range(2, 41)]
    for n in (2, 3, 7, 30, 257):
        for method in ("single", "average", "ward"):
            trees.append(scipy.cluster.hierarchy.linkage(rng.normal(size=(n, 3)), method=method))
    grid = np.arange(64).reshape(8, 8) // 2  # image regions two pixels wide, as the image adapter's
    trees.append(image_linkage(np.kron(grid, np.ones((4, 4), dtype=int))))
    trees.append(pair_linkage([0] * 5 + [1] * 7))  # a sentence pair: each sentence merges first
    return trees


TREES = _trees()


@pytest.mark.parametrize("tree", TREES, ids=lambda t: f"{len(t) + 1}-leaves")
def test_leaf_masks_equal_shaps(tree: np.ndarray) -> None:
    ours, theirs = leaf_masks(tree), shap.utils.make_masks(tree)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)  # same order: left child's leaves first
    np.testing.assert_array_equal(ours.data, theirs.data)


def test_a_wrong_mask_builder_is_caught() -> None:
    """The comparison above can fail: children swapped give the same sets in another order."""
    tree = contiguous_linkage(9)
    swapped = tree.copy()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]
    theirs = shap.utils.make_masks(tree)
    assert not np.array_equal(leaf_masks(swapped).indices, theirs.indices)
    assert (leaf_masks(swapped) != theirs).nnz == 0  # same leaf sets: only the order tells them apart


@pytest.mark.parametrize("tree", TREES[::4], ids=lambda t: f"{len(t) + 1}-leaves")
def test_lower_credit_equals_shaps(tree: np.ndarray) -> None:
    m = len(tree) + 1
    start = np.random.default_rng(m).normal(size=2 * m - 1)
    ours, theirs = start.copy(), start.copy()
    lower_credit(2 * m - 2, 0, m, ours, tree)
    _partition.lower_credit(2 * m - 2, 0, m, theirs, tree)
    np.testing.assert_array_equal(ours, theirs)
    other = start.copy()
    lower_credit(2 * m - 2, 1.0, m, other, tree)  # a different credit gives different leaves: the test can fail
    assert not np.array_equal(other, theirs)


def _fixed_output_case(rng: np.random.Generator, outputs_shape: tuple[int, ...], rows: int, weights: bool) -> tuple:
    masks = 12
    varying = rng.random((masks, rows)) < 0.5
    varying[0] = True  # the first mask sets every background row
    varying[5] = False  # a mask with no rows of its own repeats the average before it
    num = varying.sum(1)
    positions = np.concatenate(([0], np.cumsum(num)))
    outputs = rng.normal(size=(int(positions[-1]),) + outputs_shape)
    lin = rng.random((rows,) + outputs_shape) if weights else None
    return varying, num, positions, outputs, lin


@pytest.mark.parametrize("outputs_shape", [(), (3,)], ids=["single", "multi"])
@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("weights", [False, True])
def test_fixed_output_equals_shaps(outputs_shape: tuple[int, ...], rows: int, weights: bool) -> None:
    rng = np.random.default_rng(rows * 10 + len(outputs_shape) + weights)
    varying, num, positions, outputs, lin = _fixed_output_case(rng, outputs_shape, rows, weights)
    results = []
    for kernel in (fixed_output, _masked_model._build_fixed_output):
        averaged, last = np.zeros((len(num),) + outputs_shape), np.zeros((rows,) + outputs_shape)
        kernel(averaged, last, outputs, positions, varying, num, shap.links.identity, lin)
        results.append(averaged)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-13, atol=1e-15)  # numba's mean sums in another order
    if rows == 1:
        np.testing.assert_array_equal(results[0], results[1])  # our masker's case: one background row, exact
    assert np.ptp(results[0]) > 0  # not all zeros: a kernel that wrote nothing would fail above


def test_fixed_output_applies_other_links_as_shap() -> None:
    rng = np.random.default_rng(3)
    varying, num, positions, outputs, _ = _fixed_output_case(rng, (), 3, False)
    outputs = 1 / (1 + np.exp(-outputs))  # probabilities, for the logit link
    results = []
    for kernel in (fixed_output, _masked_model._build_fixed_output):
        averaged, last = np.zeros(len(num)), np.zeros(3)
        kernel(averaged, last, outputs, positions, varying, num, shap.links.logit, None)
        results.append(averaged)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def _shap_modules() -> dict[str, dict[str, object]]:
    """Return every loaded shap (and numba, numpy) module's attributes as they are now."""
    return {name: dict(vars(mod)) for name, mod in list(sys.modules.items())
            if name.split(".")[0] in ("shap", "numba", "numpy") and mod is not None}


def changed(before: dict[str, dict[str, object]]) -> list[str]:
    """Return 'module.name' for every attribute that `before` holds and that is no longer the same object."""
    now = _shap_modules()
    return sorted(f"{m}.{k}" for m, attrs in before.items() for k, v in attrs.items()
                  if m in now and (k not in now[m] or now[m][k] is not v))


def _model_and_masker(clustering: np.ndarray) -> tuple:
    d = len(clustering) + 1
    weights = np.random.default_rng(1).normal(size=d)

    def model(x: np.ndarray) -> np.ndarray:
        keep = np.asarray(x, dtype=float)
        return np.tanh(keep @ weights) + keep[:, 3] * keep[:, d - 2]

    return d, model, shap.maskers.Partition(np.zeros((1, d)), clustering=clustering)


@pytest.mark.parametrize("clustering", [contiguous_linkage(23), TREES[-3]], ids=["contiguous", "image"])
def test_owen_values_equal_shaps_untouched_path(clustering: np.ndarray) -> None:
    """End to end: shap's Partition explainer on our kernels gives its values on its own, exactly."""
    d, model, masker = _model_and_masker(clustering)
    ours = explainer_class(np.random.RandomState(5))
    assert ours is not None and issubclass(ours, shap.explainers.Partition)
    np.random.seed(5)
    theirs = shap.explainers.Partition(model, masker)(np.ones((1, d)), max_evals=200, silent=True).values[0]
    np.testing.assert_array_equal(ours(model, masker)(np.ones((1, d)), max_evals=200, silent=True).values[0], theirs)


def test_the_tie_break_stream_is_the_seeded_one() -> None:
    """Where clusters tie, another stream gives other values: so the equality above can fail."""
    d, w = 16, np.arange(16) % 4  # repeated weights: equally urgent clusters

    def model(x: np.ndarray) -> np.ndarray:
        keep = np.asarray(x, dtype=float)
        return np.tanh(keep @ w / 8) + keep[:, 0] * keep[:, 15]

    masker = shap.maskers.Partition(np.zeros((1, d)), clustering=contiguous_linkage(d))
    np.random.seed(5)
    theirs = shap.explainers.Partition(model, masker)(np.ones((1, d)), max_evals=100, silent=True).values[0]
    values = {}
    for seed in (5, 6):
        ours = explainer_class(np.random.RandomState(seed))
        assert ours is not None
        values[seed] = ours(model, masker)(np.ones((1, d)), max_evals=100, silent=True).values[0]
    np.testing.assert_allclose(values[5], theirs, rtol=1e-12, atol=1e-15)
    assert not np.allclose(values[6], theirs)


def test_no_module_of_shap_numba_or_numpy_changes_during_or_after_a_call() -> None:
    """Not even while ours runs (a user's thread could look then), and not after an error."""
    d, model, masker = _model_and_masker(contiguous_linkage(15))
    explainer_class(np.random.RandomState(0))  # imports done, so new modules do not count as changes
    before = _shap_modules()
    state = np.random.get_state()
    seen: list[list[str]] = []

    def watched(x: np.ndarray) -> np.ndarray:
        seen.append(changed(before))
        return model(x)

    ours = explainer_class(np.random.RandomState(0))
    assert ours is not None
    ours(watched, masker)(np.ones((1, d)), max_evals=100, silent=True)

    def broken(x: np.ndarray) -> np.ndarray:
        seen.append(changed(before))
        raise RuntimeError("the model failed")

    with pytest.raises(RuntimeError, match="the model failed"):
        ours(broken, masker)(np.ones((1, d)), max_evals=100, silent=True)
    assert seen and all(c == [] for c in seen), seen
    assert changed(before) == []
    assert np.array_equal(np.random.get_state()[1], state[1])  # numpy's global stream was not drawn from


def test_an_untested_shap_version_runs_shap_as_installed(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Any other version: no kernels, one debug line, the same values from shap's own path."""
    from explain.methods.shap_partition import partition

    d, model, _ = _model_and_masker(contiguous_linkage(12))
    view = type("View", (), {"features": tuple(range(d)), "clustering": contiguous_linkage(d)})()
    ours = partition(model, view, 120, 64, seed=4)  # type: ignore[arg-type]
    monkeypatch.setattr(shap_kernels, "TESTED_SHAP", ("0.0.1",))
    monkeypatch.setattr(shap_kernels, "_refusal", [])
    with caplog.at_level(logging.DEBUG, logger="explain.methods.shap_kernels"):
        assert explainer_class(np.random.RandomState(0)) is None
        assert explainer_class(np.random.RandomState(0)) is None
    from explain.methods import get

    assert not get("shap").batchable  # shap as installed reads numpy's global stream: one input at a time
    lines = [r.getMessage() for r in caplog.records if r.name == "explain.methods.shap_kernels"]
    assert len(lines) == 1 and "not a version these kernels were tested with" in lines[0], lines
    state = np.random.get_state()
    plain = partition(model, view, 120, 64, seed=4)  # type: ignore[arg-type]
    np.testing.assert_array_equal(plain[0], ours[0])
    assert plain[1:] == ours[1:]
    assert np.array_equal(np.random.get_state()[1], state[1])  # the global stream seeded for the call, then restored


def test_a_renamed_shap_helper_turns_the_kernels_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """shap renames `lower_credit` (simulated): its explain_row no longer reads the name we bind, so we bind nothing."""
    from shap.explainers import _partition

    original = _partition.PartitionExplainer.explain_row
    code = original.__code__.replace(co_names=tuple("lower_credit_v2" if n == "lower_credit" else n for n in original.__code__.co_names))
    renamed = type(original)(code, original.__globals__, original.__name__, original.__defaults__, original.__closure__)
    renamed.__kwdefaults__ = original.__kwdefaults__
    monkeypatch.setattr(_partition.PartitionExplainer, "explain_row", renamed)
    monkeypatch.setattr(shap_kernels, "_refusal", [])
    assert explainer_class(np.random.RandomState(0)) is None
    assert "does not read" in str(shap_kernels._refusal[0])


USERS_FIRST_CALL = """
import json, sys, threading
import numpy as np
import shap
import numba.core.event as ev
from explain.adapters.base import contiguous_linkage
from explain.methods.shap_partition import partition

d = 14
tree = contiguous_linkage(d)
w = np.random.default_rng(2).normal(size=d)

def f(x):
    keep = np.asarray(x, dtype=float)
    return np.tanh(keep @ w) + keep[:, 2] * keep[:, 9]

compiling, ours_inside, user_done = threading.Event(), threading.Event(), threading.Event()

class HoldTheCompile(ev.Listener):
    # the user's first lower_credit compile waits until our SHAP call is running, so the two overlap for sure
    def on_start(self, event):
        if event.data["dispatcher"].py_func.__name__ == "lower_credit" and threading.current_thread().name == "user":
            compiling.set()
            ours_inside.wait(120)
    def on_end(self, event):
        pass

ev.register("numba:compile", HoldTheCompile())
masker = shap.maskers.Partition(np.zeros((1, d)), clustering=tree)
out = {}

def users_own_call():
    try:
        np.random.seed(5)
        out["user"] = shap.explainers.Partition(f, masker)(np.ones((1, d)), max_evals=150, silent=True).values[0].tolist()
    except Exception as e:
        out["user"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    finally:
        user_done.set()

def our_model(keep):
    ours_inside.set()
    user_done.wait(120)  # ours stays inside its call until the user's call has ended
    return f(keep)

view = type("View", (), {"features": tuple(range(d)), "clustering": tree})()
user = threading.Thread(target=users_own_call, name="user")
user.start()
assert compiling.wait(120), "the user's call never compiled lower_credit"
out["ours"] = partition(our_model, view, 150, 64, seed=5)[0].tolist()
user.join(120)
np.random.seed(5)  # shap untouched, now and in this thread: the reference for both
reference = shap.explainers.Partition(f, masker)(np.ones((1, d)), max_evals=150, silent=True).values[0].tolist()
print(json.dumps({**out, "reference": reference}))
"""


@pytest.mark.slow  # a fresh process that imports shap and compiles its kernels: 12-24 s here
def test_a_users_first_shap_call_in_another_thread_gets_shap_as_installed() -> None:
    """Fresh process: the user's first `lower_credit` compile happens while our SHAP call runs.

    With a module swap (the old design) numba resolved the recursive global to our Python function
    there: 'Untyped global name lower_credit', and shap's dispatcher stayed broken.
    """
    proc = subprocess.run([sys.executable, "-c", USERS_FIRST_CALL], capture_output=True, text=True, timeout=400,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["user"] == out["reference"], out["user"]
    np.testing.assert_allclose(out["ours"], out["reference"], rtol=1e-12, atol=1e-15)  # numba rounds a product differently


def test_a_shap_run_compiles_none_of_shaps_kernels(tiny_bert: Path) -> None:
    """In a fresh process, explaining with SHAP leaves every numba kernel of shap uncompiled."""
    script = textwrap.dedent(f"""
        import json, sys
        import explain
        model = explain.load({str(tiny_bert)!r}, device="cpu")
        res = explain.explain(model, ["a good film but a bad plot"], methods=["shap"], shap={{"max_evals": 100}})
        from numba.core.registry import CPUDispatcher
        from shap.explainers import _partition
        compiled = sorted(f"{{name}}.{{k}}" for name, mod in list(sys.modules.items()) if name.startswith("shap")
                          for k, v in vars(mod).items() if isinstance(v, CPUDispatcher) and v.signatures)
        print(json.dumps({{"compiled": compiled, "failures": len(res.failures),
                          "restored": _partition.make_masks.__module__}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"compiled": [], "failures": 0, "restored": "shap.utils._masked_model"}
