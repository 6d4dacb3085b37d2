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

@dataclass(frozen=True)
class InvalidInput:
    """A placeholder for an input that could not even be read (e.g. a malformed JSONL line)."""

    error: str
    text: str | None = None


Progress = Callable[[str, int, str, Any], None]  # (event, input index, method, payload)


def explain(
    model: Adapter,
    inputs: Sequence[Any] | str,
    methods: Sequence[str] | str | None = ("ig",),
    target: Any = None,
    *,
    granularity: str = "word",
    seed: int = 0,
    max_length: int | None = None,
    max_new_tokens: int = 8,
    continuation: str | None = None,
    progress: Progress | None = None,
    on_input: Callable[[Results], None] | None = None,
    **settings: Mapping[str, Any],
) -> Results:
    """Return Results with one Explanation per input x method x target.

    Causal LMs: each input is a prompt; `continuation` (or greedy generation of
    `max_new_tokens`) gives the tokens explained, one target per generated token.

    `settings` maps a method name to its settings, e.g. ``ig={"n_steps": 32}``. An input that
    cannot be explained is recorded in ``results.failures`` and the others go on.
    `on_input` is called with the Results so far after each input (used to flush them to disk).
    """
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__len__"):
        inputs = [inputs] if isinstance(inputs, (str, bytes)) else list(inputs)  # type: ignore[arg-type]
    if granularity not in ("word", "token"):
        raise ExplainError(f"unknown granularity {granularity!r}: use word or token")
    chosen = registry.resolve(methods if not isinstance(methods, str) else methods, model)
    unknown = set(settings) - set(registry.REGISTRY)
    if unknown:
        raise MethodError(f"settings given for unknown method(s) {sorted(unknown)}; methods are: {', '.join(registry.REGISTRY)}")
    parsed = {m.name: m.settings(settings.get(m.name)) for m in chosen}
    model.check_target(target)
    results = Results(model=model.info, inputs=[], run=_run_info(model, chosen, parsed, seed, granularity, target))
    started = time.perf_counter()
    for i, raw in enumerate(inputs):
        options = {"max_length": max_length, "max_new_tokens": max_new_tokens, "continuation": continuation}
        example = _prepare(model, raw, i, options, results, progress)
        if example is None:
            if on_input:
                on_input(results)
            continue
        results.inputs.append(example.record)
        try:
            targets = model.targets(example, target)
        except ExplainError as e:
            results.failures.append(Failure(input=i, method=None, error=str(e)))
            targets = []
        for m in chosen:
            for t in targets:
                if progress:
                    progress("start", i, m.name, t)
                try:
                    torch.manual_seed(seed)
                    exp = m.explain(model, example, t, parsed[m.name], granularity=granularity, seed=seed)
                except ExplainError as e:
                    results.failures.append(Failure(input=i, method=m.name, error=str(e)))
                    if progress:
                        progress("fail", i, m.name, str(e))
                    continue
                results.append(exp)
                if progress:
                    progress("done", i, m.name, exp)
        if on_input:
            on_input(results)
    results.run["seconds"] = round(time.perf_counter() - started, 3)
    results.run["rows"] = int(sum(e.rows for e in results))
    return results


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
