"""One summary warning per run: failed inputs, truncated inputs and failed self-checks, counted."""

from __future__ import annotations

import warnings
from collections import defaultdict

from ..errors import ExplainWarning
from ..results.explanation import NO_EVIDENCE_VERDICT, Results

# How a failed self-check reads in the summary (method, check name); others read generically.
_PHRASES = {
    ("ig", "completeness"): "IG did not converge",
    ("lime", "surrogate_fit"): "LIME fit R^2 below threshold",
    ("lime", "stability"): "LIME unstable across two halves of its neighbours",
    ("shap", "stability"): "SHAP unstable across budgets",
}


def _inputs(n: int) -> str:
    return f"{n} input" if n == 1 else f"{n} inputs"


def summary(results: Results, indices: set[int] | None = None) -> str | None:
    """Return one line counting the run's failures, truncations and failed self-checks, or None.

    `indices` limits the count to the inputs this call explained (a resumed run's earlier
    inputs were reported by the run that made them).
    """
    def keep(i: int) -> bool:
        return indices is None or i in indices

    total = len({r.index for r in results.inputs if keep(r.index)}) or len(indices or ())
    parts: list[str] = []
    failed = {f.input for f in results.failures if keep(f.input)}
    if failed:
        first = min(failed)
        why = next(f for f in results.failures if f.input == first).error
        if not why.startswith(f"input {first}"):  # most errors already name their input
            why = f"input {first}: {why}"
        parts.append(f"{len(failed)} of {total} inputs failed (first: {why})")
    truncated = {r.index for r in results.inputs if keep(r.index) and r.note and "truncat" in r.note}
    if truncated:
        parts.append(f"{_inputs(len(truncated))} truncated")
    checks: dict[tuple[str, str], set[int]] = defaultdict(set)
    for e in results:
        if keep(e.input):
            failed_checks = [c for c in e.self_checks if not c.passed]
            if e.verdict == NO_EVIDENCE_VERDICT:  # the other checks fail because there is nothing to check
                failed_checks = [c for c in failed_checks if c.name == "evidence"]
            for c in failed_checks:
                checks[(e.method, c.name)].add(e.input)
    for (method, name), where in checks.items():
        phrase = (f"{method} found no evidence (nothing moves the output)" if name == "evidence"
                  else _PHRASES.get((method, name), f"{method} self-check {name!r} failed"))
        parts.append(f"{phrase} on {_inputs(len(where))}")
    return "; ".join(parts) or None


def warn(results: Results, indices: set[int] | None = None, stacklevel: int = 3) -> str | None:
    """Issue the run's summary as one ExplainWarning (nothing when all went well); return it."""
    text = summary(results, indices)
    if text:
        warnings.warn(text, ExplainWarning, stacklevel=stacklevel)
    return text
