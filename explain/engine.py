"""explain(): run methods over many inputs through one adapter, collecting Results."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
import os
import platform
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from . import methods as registry
from .adapters.base import Adapter, Example
from .errors import ExplainError, InputError, MethodError
from .explanation import Explanation, Failure, InputRecord, Results
from .wrapping import as_adapter

@dataclass(frozen=True)
class InvalidInput:
    """A placeholder for an input that could not even be read (e.g. a malformed JSONL line)."""

    error: str
    text: str | None = None


Progress = Callable[[str, int, str, Any], None]  # (event, input index, method, payload)


def explain(
    model: Adapter | Any,
    inputs: Sequence[Any] | str,
    methods: Sequence[str] | str | None = ("ig",),
    target: Any = None,
    *,
    granularity: str = "word",
    seed: int = 0,
    max_length: int | None = None,
    truncate: bool = True,
    max_new_tokens: int = 8,
    continuation: str | None = None,
    progress: Progress | None = None,
    on_input: Callable[[Results], None] | None = None,
    resume: Results | None = None,
    first_index: int = 0,
    **settings: Any,
) -> Results:
    """Return Results with one Explanation per input x method x target.

    Texts longer than `max_length` (or the model's maximum) are truncated with a note in the
    input's record, or fail alone when `truncate` is False. Causal LMs: each input is a
    prompt; `continuation` (or greedy generation of `max_new_tokens`) gives the tokens
    explained, one target per generated token.

    `settings` maps a method name to its settings, e.g. ``ig={"n_steps": 32}``. An input that
    cannot be explained is recorded in ``results.failures`` and the others go on.
    `on_input` is called with the Results so far after each input (used to flush them to disk).
    `resume` takes the Results of an interrupted run of the same job: its finished inputs are
    kept and not explained again. `first_index` numbers the inputs from that index (a shard of
    a bigger run keeps the whole run's input numbers).
    """
    model = as_adapter(model)
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__len__"):
        inputs = [inputs] if isinstance(inputs, (str, bytes)) else list(inputs)  # type: ignore[arg-type]
    if granularity not in ("word", "token") and not (granularity == "pixel" and model.family == "image-classifier"):
        raise ExplainError(f"unknown granularity {granularity!r}: use word or token")
    chosen = registry.resolve(methods if not isinstance(methods, str) else methods, model)
    unknown = set(settings) - set(registry.REGISTRY)
    if unknown:
        raise MethodError(f"settings given for unknown method(s) {sorted(unknown)}; methods are: {', '.join(registry.REGISTRY)}")
    parsed = {m.name: m.settings(settings.get(m.name)) for m in chosen}
    if any(m.name == "shap" for m in chosen):
        from .methods.shap_partition import warm_up_in_background

        warm_up_in_background()
    model.check_target(target)
    results = Results(model=model.info, inputs=[], run=_run_info(model, chosen, parsed, seed, granularity, target))
    done = _resumed(results, resume, inputs, first_index)
    started = time.perf_counter()
    options = {"max_length": max_length, "max_new_tokens": max_new_tokens, "continuation": continuation}
    if not truncate:  # only passed when set, so adapters that never truncate need not know it
        options["truncate"] = False
    for i, raw in enumerate(inputs, start=first_index):
        if i in done:
            continue
        example = _prepare(model, raw, i, options, results, progress)
        if example is not None:
            _explain_example(model, example, chosen, parsed, target, granularity, seed, results, progress)
        if on_input:
            on_input(results)
    results.inputs.sort(key=lambda r: r.index)
    results.sort(key=lambda e: e.input)  # stable: method and target order kept within an input
    results.run["seconds"] = round(time.perf_counter() - started, 3)
    results.run["rows"] = int(sum(e.rows for e in results))
    return results


def _explain_example(
    model: Adapter,
    example: Example,
    chosen: Sequence[registry.Method],
    parsed: Mapping[str, Any],
    target: Any,
    granularity: str,
    seed: int,
    results: Results,
    progress: Progress | None,
) -> None:
    """Run every method on every target of one prepared input, recording failures."""
    i = example.index
    results.inputs.append(example.record)
    try:
        targets = model.targets(example, target)
    except ExplainError as e:
        results.failures.append(Failure(input=i, method=None, error=str(e)))
        return
    for m in chosen:
        for t in targets:
            if progress:
                progress("start", i, m.name, t)
            try:
                torch.manual_seed(seed)
                exp = m.explain(model, example, t, parsed[m.name], granularity=granularity, seed=seed)
            except Exception as e:  # one input's failure must not end the others
                error = str(e) if isinstance(e, ExplainError) else f"{type(e).__name__}: {e}"
                results.failures.append(Failure(input=i, method=m.name, error=error))
                if progress:
                    progress("fail", i, m.name, error)
                continue
            results.append(exp)
            if progress:
                progress("done", i, m.name, exp)


def _resumed(results: Results, resume: Results | None, inputs: Sequence[Any], first: int = 0) -> set[int]:
    """Copy the finished inputs of an earlier run of the same job; return their indices."""
    if resume is None:
        return set()
    if resume.model.content_hash != results.model.content_hash:
        raise ExplainError("cannot resume: the saved results were made with another checkpoint (content hash differs)")
    for key in ("methods", "settings", "seed", "granularity", "target"):
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
        same = record.path == str(raw) if record.kind == "image" else record.text == expected
        if not same:
            raise ExplainError(f"cannot resume: input {i} differs from the saved run's; rerun with --force instead")
        done.add(i)
    results.inputs.extend(r for r in resume.inputs if r.index in done)
    results.extend(e for e in resume if e.input in done)
    return done


def _plain(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def _prepare(
    model: Adapter, raw: Any, i: int, options: dict[str, Any], results: Results, progress: Progress | None
) -> Example | None:
    try:
        if isinstance(raw, InvalidInput):
            raise InputError(raw.error)
        return model.prepare(raw, i, **options)
    except ExplainError as e:
        kind = _kind(model)
        text, path = None, None
        if isinstance(raw, InvalidInput):
            text = raw.text
        elif kind == "image" and isinstance(raw, (str, os.PathLike)):
            path = str(raw)
        elif isinstance(raw, str):
            text = raw
        results.inputs.append(InputRecord(index=i, kind=kind, text=text, path=path, note="failed"))
        results.failures.append(Failure(input=i, method=None, error=str(e)))
        if progress:
            progress("fail", i, "", str(e))
        return None


def _kind(model: Adapter) -> str:
    return {"text-classifier": "text", "causal-lm": "prompt"}.get(model.family, "image")


def _run_info(
    model: Adapter, chosen: Iterable[registry.Method], parsed: Mapping[str, Any], seed: int, granularity: str, target: Any
) -> dict[str, Any]:
    import captum
    import lime
    import shap
    import transformers

    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "methods": [m.name for m in chosen],
        "settings": {k: vars(v) for k, v in parsed.items()},
        "seed": seed,
        "granularity": granularity,
        "target": target if target is None or isinstance(target, (int, str)) else list(target),
        "device": str(model.device),
        "versions": {
            "explain": _version(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "captum": captum.__version__,
            "shap": shap.__version__,
            "lime": getattr(lime, "__version__", "0.2.0.1"),
            "numpy": np.__version__,
        },
    }


def _version() -> str:
    from . import __version__

    return __version__
