"""Resume an interrupted run: check the saved run is the same job, and keep its finished inputs."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import ExplainError
from ..results.explanation import Results
from ..results.results_io import _plain

# The run fields that must match for a saved run's explanations to be this job's.
SAME_JOB = ("methods", "settings", "seed", "granularity", "target", "top_classes", "baseline")


def resumed(results: Results, resume: Results | None, inputs: Sequence[Any], first: int = 0) -> set[int]:
    """Copy the finished inputs of an earlier run of the same job into `results`; return their indices."""
    if resume is None:
        return set()
    if resume.model.content_hash != results.model.content_hash:
        raise ExplainError("cannot resume: the saved results were made with another checkpoint (content hash differs)")
    for key in SAME_JOB:
        if _plain(resume.run.get(key)) != _plain(results.run.get(key)):
            raise ExplainError(f"cannot resume: the saved run used other {key} ({resume.run.get(key)!r}); rerun with --force instead")
    failed = {f.input for f in resume.failures}
    done: set[int] = set()
    for record in resume.inputs:
        i = record.index
        if not first <= i < first + len(inputs) or i in failed:
            continue
        raw = inputs[i - first]
        expected = raw.get("prompt") if isinstance(raw, dict) else raw
        same = record.path == str(raw) if record.kind == "image" else record.text == expected or _cut_from(record, expected)
        if not same:
            raise ExplainError(f"cannot resume: input {i} differs from the saved run's; rerun with --force instead")
        done.add(i)
    results.inputs.extend(r for r in resume.inputs if r.index in done)
    results.extend(e for e in resume if e.input in done)
    return done


def _cut_from(record: Any, prompt: Any) -> bool:
    """Return True when `record` holds `prompt` truncated from its start (a causal LM's long prompt)."""
    cut = "its first words were cut" in (record.note or "")
    return cut and isinstance(prompt, str) and isinstance(record.text, str) and prompt.endswith(record.text)
