"""The three numba kernels shap's Partition explainer calls, as numpy, so no process pays their JIT.

shap's Partition explainer (the algorithm, the cluster order, the Owen values) stays shap's.
Around it, three small helpers are numba kernels that are JIT-compiled in every new process,
because numba cannot cache them on disk (two are recursive; one takes a function argument):

- `shap.utils.make_masks` (`_rec_fill_masks`): the node-to-leaves matrix of the hierarchy;
- `shap.utils._masked_model._build_fixed_output`: copies model outputs into per-mask averages
  over the masker's background rows (one row here: the adapter's masker is the mask itself);
- `shap.explainers._partition.lower_credit`: hands each cluster's credit down to its leaves.

Together they cost 4-6 s of compiling on this project's 2-core machines, in every `explain
run` that uses SHAP, for work that takes milliseconds. While one of our Partition explainers
is built and called, `numpy_kernels()` lends shap's modules the numpy functions below, which
compute the same arrays in the same order (tests/test_shap_kernels.py compares each with shap's
kernel on many trees and outputs, and the end-to-end values with shap's untouched path), and
puts shap's own back when the last of our calls ends. A caller's own shap calls outside ours
see shap exactly as installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

_lock = threading.Lock()
_active = [0]  # our calls in flight (inputs explained side by side run shap in several threads)
_saved: dict[str, Any] = {}


def leaf_masks(cluster_matrix: np.ndarray) -> Any:
    """shap's `make_masks`: CSR matrix, row i = the leaves under node i, the left child's first."""
    import scipy.sparse

    cluster_matrix = np.asarray(cluster_matrix)
    m = cluster_matrix.shape[0] + 1
    rows: list[np.ndarray] = [np.array([i], dtype=int) for i in range(m)]
    for left, right in cluster_matrix[:, :2].astype(int):
        rows.append(np.concatenate((rows[left], rows[right])))
    indptr = np.zeros(2 * m, dtype=int)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.concatenate(rows)
    return scipy.sparse.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr), shape=(2 * m - 1, m))


def fixed_output(
    averaged_outs: np.ndarray,
    last_outs: np.ndarray,
    outputs: np.ndarray,
    batch_positions: np.ndarray,
    varying_rows: np.ndarray,
    num_varying_rows: np.ndarray,
    link: Any,
    linearizing_weights: np.ndarray | None,
) -> None:
    """shap's `_build_fixed_output` (single and multi output): fill averaged_outs in place.

    Row i is the mean over the background rows of the outputs, the rows mask i did not change
    carried over from the mask before; a mask with no rows of its own repeats the last average.
    """
    from shap import links

    apply = (lambda x: x) if link is links.identity else link
    sample_count = last_outs.shape[0]
    for i in range(len(averaged_outs)):
        start, stop = batch_positions[i], batch_positions[i + 1]
        if start < stop:
            if num_varying_rows[i] == sample_count:
                last_outs[:] = outputs[start:stop]
            else:
                last_outs[varying_rows[i]] = outputs[start:stop]
            if linearizing_weights is not None:
                averaged_outs[i] = np.mean(linearizing_weights * apply(last_outs), axis=0)
            else:
                averaged_outs[i] = apply(np.mean(last_outs, axis=0))
        else:
            averaged_outs[i] = averaged_outs[i - 1]


def lower_credit(i: int, value: float, m: int, values: np.ndarray, clustering: np.ndarray) -> None:
    """shap's `lower_credit`: add `value` to node i and hand node i's total down, by leaf count."""
    stack = [(int(i), value)]
    while stack:
        node, credit = stack.pop()
        if node < m:
            values[node] += credit
            continue
        left, right = int(clustering[node - m, 0]), int(clustering[node - m, 1])
        group_size = int(clustering[node - m, 3])
        lsize = int(clustering[left - m, 3]) if left >= m else 1
        rsize = int(clustering[right - m, 3]) if right >= m else 1
        assert lsize + rsize == group_size
        values[node] += credit
        # the left subtree never touches values[node], so both shares are final now
        stack.append((right, values[node] * rsize / group_size))
        stack.append((left, values[node] * lsize / group_size))


@contextmanager
def numpy_kernels() -> Iterator[None]:
    """While any of our calls is inside, shap's Partition explainer runs on the functions above."""
    from shap.explainers import _partition
    from shap.utils import _masked_model

    places = {"make_masks": (_partition, leaf_masks), "lower_credit": (_partition, lower_credit),
              "_build_fixed_output": (_masked_model, fixed_output)}
    with _lock:
        if _active[0] == 0:
            for name, (module, ours) in places.items():
                _saved[name] = getattr(module, name)
                setattr(module, name, ours)
        _active[0] += 1
    try:
        yield
    finally:
        with _lock:
            _active[0] -= 1
            if _active[0] == 0:
                for name, (module, _) in places.items():
                    setattr(module, name, _saved.pop(name))
