"""shap's Partition explainer on numpy stand-ins for its three numba kernels, with shap's modules untouched.

shap's Partition explainer (the algorithm, the cluster order, the Owen values) stays shap's.
Around it, three small helpers are numba kernels that are JIT-compiled in every new process,
because numba cannot cache them on disk (two are recursive; one takes a function argument):

- `shap.utils.make_masks` (`_rec_fill_masks`): the node-to-leaves matrix of the hierarchy;
- `shap.utils._masked_model._build_fixed_output`: copies model outputs into per-mask averages
  over the masker's background rows (one row here: the adapter's masker is the mask itself);
- `shap.explainers._partition.lower_credit`: hands each cluster's credit down to its leaves.

Together they cost seconds of compiling (benchmarks/results/shap_compile.json) in every process
that uses SHAP, for work that takes milliseconds. `explainer_class(rng)` returns a subclass of
shap's `PartitionExplainer` whose `__init__`, `explain_row` and `owen` are shap's own functions
(the same code objects, not copies of their source) bound to a private copy of their module's
globals, in which `make_masks`, `lower_credit` and `MaskedModel` name the numpy functions below
and `np.random` is the call's own seeded stream (shap breaks ties between equally urgent
clusters with `np.random.randn()`); its `MaskedModel` is shap's with `_full_masking_call` bound
the same way to our `_build_fixed_output`. Nothing in shap's (or numpy's) modules is assigned,
ever: a caller's own shap calls, in any thread and at any time, run shap exactly as installed.
The numpy functions compute the same arrays in the same order (tests/test_shap_kernels.py
compares each with shap's kernel and the end-to-end values with shap's untouched path).

Guarded: only on the shap versions this was tested with (`TESTED_SHAP`), and only when each
function bound has the globals it is expected to read and writes none. Anywhere else
`explainer_class` returns None, the caller runs shap's explainer as installed (numba compiles
its kernels once per process) and one debug line says why.
"""

from __future__ import annotations

import dis
import logging
import types
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

TESTED_SHAP = ("0.51.0",)  # the exact releases whose three kernels and call sites were compared
# shap function -> the globals its code must read (the names bound to ours, and numpy)
_READS = {
    "__init__": {"make_masks"},
    "explain_row": {"make_masks", "lower_credit", "MaskedModel"},
    "owen": {"np"},
    "_full_masking_call": {"_build_fixed_output"},
}
_refusal: list[str | None] = []  # why the kernels are not used, once known (None: they are)


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


def _bound(func: Callable[..., Any], namespace: dict[str, Any]) -> Callable[..., Any]:
    """Return `func` with the same code, defaults and closure, reading its globals from `namespace`."""
    new = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
    new.__kwdefaults__ = dict(func.__kwdefaults__) if func.__kwdefaults__ else None
    new.__qualname__, new.__doc__, new.__module__ = func.__qualname__, func.__doc__, func.__module__
    return new


def _why_not() -> str | None:
    """Return why shap's installed version cannot take our kernels safely, or None when it can."""
    import shap
    from shap.explainers import _partition
    from shap.utils import _masked_model

    version = getattr(shap, "__version__", "unknown")
    if version not in TESTED_SHAP:
        return f"shap {version} is not a version these kernels were tested with ({', '.join(TESTED_SHAP)})"
    owners = {"_full_masking_call": getattr(_masked_model, "MaskedModel", None)}
    for name, needs in _READS.items():
        func = getattr(owners.get(name, getattr(_partition, "PartitionExplainer", None)), name, None)
        code = getattr(func, "__code__", None)
        if code is None:
            return f"shap {version} has no function {name}"
        if not needs <= set(code.co_names) or set(code.co_freevars) - {"__class__"}:
            return f"shap {version}'s {name} does not read {sorted(needs)} as expected"
        if any(i.opname in ("STORE_GLOBAL", "DELETE_GLOBAL") for i in dis.get_instructions(code)):
            return f"shap {version}'s {name} assigns a module global"  # it would write to our copy
    if not all(callable(getattr(_partition, n, None)) for n in ("make_masks", "lower_credit")):
        return f"shap {version}'s partition module lacks make_masks or lower_credit"
    return None


def supported() -> bool:
    """Return True when shap's Partition explainer runs on our kernels (checked once per process)."""
    if not _refusal:
        why = _why_not()
        _refusal.append(why)
        if why:
            log.debug("SHAP runs shap's own numba kernels (compiled once per process): %s", why)
    return _refusal[0] is None


def seeded_numpy(rng: np.random.RandomState) -> types.ModuleType:
    """Return a stand-in for the numpy module whose `random` is `rng` (numpy itself is not touched)."""
    stand_in = types.ModuleType("numpy")
    stand_in.__dict__.update(vars(np))
    stand_in.random = rng  # type: ignore[attr-defined]
    return stand_in


def explainer_class(rng: np.random.RandomState) -> type | None:
    """Return shap's PartitionExplainer on our kernels, tie-breaks drawn from `rng`, or None where unsupported."""
    if not supported():
        return None
    from shap.explainers import _partition
    from shap.utils import _masked_model

    masked_globals = dict(vars(_masked_model), _build_fixed_output=fixed_output)
    base_model = _masked_model.MaskedModel
    model_class = type(base_model.__name__, (base_model,),
                       {"_full_masking_call": _bound(base_model._full_masking_call, masked_globals)})
    partition_globals = dict(vars(_partition), make_masks=leaf_masks, lower_credit=lower_credit,
                             MaskedModel=model_class, np=seeded_numpy(rng))
    base = _partition.PartitionExplainer
    methods = {name: _bound(getattr(base, name), partition_globals) for name in ("__init__", "explain_row", "owen")}
    return type(base.__name__, (base,), methods)
