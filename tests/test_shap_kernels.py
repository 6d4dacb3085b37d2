"""Our numpy stand-ins for shap's three numba kernels equal shap's kernels, and no JIT is left.

shap_kernels lends shap's Partition explainer numpy versions of `make_masks`, `_build_fixed_output`
and `lower_credit` while our calls run (saving 4-6 s of JIT per process). If one differed - a
leaf missing, children swapped, a carried-over output row wrong, credit split by the wrong size -
every SHAP value would be wrong, so each is compared with shap's own kernel entry for entry,
the end-to-end values with shap's untouched path, and a fresh process checks that a SHAP run
compiles none of shap's kernels and leaves shap's module functions as installed.
"""

from __future__ import annotations

import json
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
from explain.methods.shap_kernels import fixed_output, leaf_masks, lower_credit, numpy_kernels


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


def test_shap_gets_its_own_kernels_back() -> None:
    own = (_partition.make_masks, _partition.lower_credit, _masked_model._build_fixed_output)
    with numpy_kernels():
        with numpy_kernels():  # nested (threads side by side): restored only when the last one leaves
            assert _partition.lower_credit is lower_credit
        assert _partition.make_masks is leaf_masks and _masked_model._build_fixed_output is fixed_output
    assert (_partition.make_masks, _partition.lower_credit, _masked_model._build_fixed_output) == own
    with pytest.raises(RuntimeError), numpy_kernels():
        raise RuntimeError("boom")
    assert (_partition.make_masks, _partition.lower_credit, _masked_model._build_fixed_output) == own


@pytest.mark.parametrize("clustering", [contiguous_linkage(23), TREES[-3]], ids=["contiguous", "image"])
def test_owen_values_equal_shaps_untouched_path(clustering: np.ndarray) -> None:
    """End to end: shap's Partition explainer on our kernels gives its values on its own, exactly."""
    d = len(clustering) + 1
    weights = np.random.default_rng(1).normal(size=d)

    def model(x: np.ndarray) -> np.ndarray:
        keep = np.asarray(x, dtype=float)
        return np.tanh(keep @ weights) + keep[:, 3] * keep[:, d - 2]

    masker = shap.maskers.Partition(np.zeros((1, d)), clustering=clustering)

    def values(ours: bool) -> np.ndarray:
        np.random.seed(5)
        if not ours:
            return shap.explainers.Partition(model, masker)(np.ones((1, d)), max_evals=200, silent=True).values[0]
        with numpy_kernels():
            return shap.explainers.Partition(model, masker)(np.ones((1, d)), max_evals=200, silent=True).values[0]

    np.testing.assert_array_equal(values(True), values(False))


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
