"""The run loop: methods over many inputs through one adapter, collecting Results.

`explain()` is the public entry (user arguments only); `run()` adds the plumbing the CLI and
the Ray workers need (progress events, flushing, resuming, input numbering).
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any, Callable, Literal, Mapping, Sequence

from . import input_batching
from .. import methods as registry
from . import run_warnings
from ..adapters.base import Adapter, Example
from ..methods.base import Method
from ..adapters.targets import top_indices
from ..errors import ExplainError, InputError, MethodError, TargetError
from ..results.explanation import Failure, InputRecord, Results
from ..images import image_inputs
from ..invalid import InvalidInput
from .resume import resumed
from .run_info import run_info
from ..execution.scope import isolated, seed_all
from .settings_check import check_baseline, check_settings
from ..loading.wrapping import as_adapter

__all__ = ["InvalidInput", "Progress", "explain", "run"]

Progress = Callable[[str, int, str, Any], None]  # (event, input index, method, payload)
Errors = Literal["raise", "record"]


def explain(
    model: Adapter | Any,
    inputs: Sequence[Any] | Any,
    methods: Sequence[str] | str | None = ("ig",),
    target: Any = None,
    *,
    top_classes: int | None = None,
    baseline: str | None = None,
    granularity: str = "word",
    seed: int = 0,
    max_length: int | None = None,
    truncate: bool = True,
    max_new_tokens: int = 8,
    continuation: str | None = None,
    errors: Errors = "raise",
    text_pair: str | Sequence[str] | None = None,
    word: int | Sequence[int] | None = None,
    batch_inputs: int | str = "auto",
    **settings: Any,
) -> Results:
    """Return Results with one Explanation per input x method x target.

    `inputs`: texts or prompts (a string is one input); images as paths, PIL images or arrays
    / tensors (a 2-D or 3-D array is one image, (H, W, C) or (C, H, W); a 4-D one a batch,
    NHWC or NCHW). `target`: None (the prediction; causal LMs: every generated token and the
    whole continuation), a label name, an index as '#N', a list, or 'all' (every class); see
    `explain.adapters.targets` for the rule. `top_classes=K` explains the K most probable
    classes of each input. `baseline` is the run's counterfactual ("what removing a feature
    means": text mask | pad | drop | unk, images blur | black | mean | noise), used by every
    method that has a `baseline` setting unless that setting is given.

    `text_pair`: the second text of sentence pairs (one per input; pairs can also be given as
    {"text": ..., "text_pair": ...} inputs). `word`: token classifiers, the word number(s) whose
    label is explained (default: every word not predicted 'O').

    `batch_inputs=K` explains K inputs side by side so that their rows share model calls
    (SHAP, LIME, ablation; other methods run one input at a time): same scores and row
    counts as K=1, one input at a time; "auto" (the default) picks K for the device: 1 for
    now (no gain measured on CPU), and 1 when no chosen method is batchable. See
    `explain.running.input_batching`.

    `settings` maps a method name to its settings, e.g. ``ig={"n_steps": 32}``; every setting
    is checked before the model runs. `errors="raise"` (the default) raises the first input's
    failure as an ExplainError naming the input; `errors="record"` keeps going and lists
    failures in ``results.failures``. Either way one ExplainWarning sums up failed inputs,
    truncated texts and failed self-checks.

    The caller's RNG states (torch, numpy, random), torch's thread count, logger levels and the
    model's train/eval mode are as they were when this returns or raises. A model passed in
    unwrapped (not through `explain.load` / `explain.from_model`) is wrapped for the call,
    which moves it to the default device and eval mode while it runs; its device and mode are
    put back afterwards.
    """
    results = run(
        model,
        inputs,
        methods,
        target,
        top_classes=top_classes,
        baseline=baseline,
        granularity=granularity,
        seed=seed,
        max_length=max_length,
        truncate=truncate,
        max_new_tokens=max_new_tokens,
        continuation=continuation,
        errors=errors,
        warn=False,
        text_pair=text_pair,
        word=word,
        batch_inputs=batch_inputs,
        **settings,
    )
    run_warnings.warn(results, stacklevel=3)  # points at the caller's line
    return results


def run(
    model: Adapter | Any,
    inputs: Sequence[Any] | Any,
    methods: Sequence[str] | str | None = ("ig",),
    target: Any = None,
    *,
    top_classes: int | None = None,
    baseline: str | None = None,
    granularity: str = "word",
    seed: int = 0,
    max_length: int | None = None,
    truncate: bool = True,
    max_new_tokens: int = 8,
    continuation: str | None = None,
    errors: Errors = "record",
    progress: Progress | None = None,
    on_input: Callable[[Results], None] | None = None,
    resume: Results | None = None,
    first_index: int = 0,
    warn: bool = True,
    text_pair: str | Sequence[str] | None = None,
    word: int | Sequence[int] | None = None,
    batch_inputs: int | str = "auto",
    **settings: Any,
) -> Results:
    """`explain()` with the engine's plumbing; records failures by default (the CLI, Ray workers).

    `on_input` is called with the Results so far after each input (used to flush them to
    disk). `resume` takes the Results of an interrupted run of the same job: its finished
    inputs are kept and not explained again. `first_index` numbers the inputs from that index
    (a shard of a bigger run keeps the whole run's input numbers). `warn=False` skips the
    summary warning (the caller reports it its own way).
    """
    if errors not in ("raise", "record"):
        raise ExplainError(f"errors={errors!r}: use 'raise' or 'record'")
    with isolated(_torch_module(model)):
        adapter = as_adapter(model)
        if text_pair is not None:  # sentence pairs: inputs[i] with text_pair[i]
            from ..adapters.pairs import pair_inputs

            inputs = pair_inputs(inputs, text_pair)
        if word is not None:  # token classifiers: these words' labels
            from ..adapters.token_classifier import word_targets

            target = word_targets(adapter, word, target)
        job = _Job(adapter, methods, target, top_classes, baseline, granularity, seed, errors, progress, settings)
        in_flight = input_batching.resolve(batch_inputs, adapter.device.type, job.chosen)
        items = _as_list(adapter, inputs)
        results = Results(model=adapter.info, inputs=[], run={**job.info(), "batch_inputs": in_flight})
        done = resumed(results, resume, items, first_index)
        setup = time.perf_counter()
        job.import_libraries()
        started = time.perf_counter()
        results.run["setup_seconds"] = round(started - setup, 3)
        options = {"max_length": max_length, "max_new_tokens": max_new_tokens, "continuation": continuation}
        if not truncate:  # only passed when set, so adapters that never truncate need not know it
            options["truncate"] = False
        todo = [(i, raw) for i, raw in enumerate(items, start=first_index) if i not in done]
        mine = {i for i, _ in todo}
        in_flight = in_flight if len(todo) > 1 else 1
        results.run["batch_inputs"] = in_flight  # how the results were computed (same scores either way)
        if in_flight > 1:  # several inputs share model calls
            input_batching.explain_side_by_side(job, todo, options, results, on_input, in_flight)
        else:
            for i, raw in todo:
                example = job.prepare(raw, i, options, results)
                if example is not None:
                    job.explain_example(example, results)
                if on_input:
                    on_input(results)
        results.inputs.sort(key=lambda r: r.index)
        results.sort(key=lambda e: e.input)  # stable: method and target order kept within an input
        results.run["seconds"] = round(time.perf_counter() - started, 3)
        results.run["rows"] = int(sum(e.rows for e in results))
    if warn:
        run_warnings.warn(results, mine, stacklevel=3)
    return results


def _torch_module(model: Any) -> Any:
    """Return the torch module behind an adapter, a (model, tokenizer) pair or a pipeline, or None."""
    module = model.model if isinstance(model, Adapter) else (model[0] if isinstance(model, tuple) else model)
    if not hasattr(module, "parameters") and hasattr(module, "model"):  # a transformers pipeline
        module = module.model
    return module if hasattr(module, "parameters") else None


def _as_list(model: Adapter, inputs: Any) -> list[Any]:
    """Return `inputs` as a list of single inputs (one string is one text, one image one image)."""
    if model.family == "image-classifier":
        return image_inputs(inputs)
    if isinstance(inputs, (str, bytes, dict)):
        return [inputs]
    if not hasattr(inputs, "__iter__"):
        raise InputError(f"inputs must be a text, a prompt or a list of them, not {type(inputs).__name__}")
    return list(inputs)


class _Job:
    """One run's choices, checked before any model call, and how one input is explained."""

    def __init__(
        self,
        model: Adapter,
        methods: Sequence[str] | str | None,
        target: Any,
        top_classes: int | None,
        baseline: str | None,
        granularity: str,
        seed: int,
        errors: Errors,
        progress: Progress | None,
        settings: Mapping[str, Any],
    ) -> None:
        if granularity not in ("word", "token") and not (granularity == "pixel" and model.family == "image-classifier"):
            raise ExplainError(f"unknown granularity {granularity!r}: use word or token")
        self.chosen = registry.resolve(methods, model)
        unknown = set(settings) - set(registry.REGISTRY)
        if unknown:
            raise MethodError(
                f"settings given for unknown method(s) {sorted(unknown)}; methods are: {', '.join(registry.REGISTRY)}"
            )
        check_baseline(model, baseline, self.chosen)
        self.parsed = {m.name: m.settings(_with_baseline(m, settings.get(m.name), baseline)) for m in self.chosen}
        check_settings(model, self.parsed)
        if top_classes is not None:
            if model.family == "causal-lm":
                raise TargetError("top_classes is for classifiers; for a causal LM give target='all' or 'steps'")
            if target is not None:
                raise TargetError("give target or top_classes, not both")
            if isinstance(top_classes, bool) or not isinstance(top_classes, int) or not 1 <= top_classes:
                raise TargetError(f"top_classes={top_classes!r}: give a number of classes >= 1")
            top_classes = min(top_classes, len(model.labels))
        model.check_target(target)
        self.model, self.target, self.top_classes, self.baseline = model, target, top_classes, baseline
        self.granularity, self.seed, self.errors, self.progress = granularity, seed, errors, progress

    def import_libraries(self) -> None:
        """Import the libraries the chosen methods call (captum, shap, lime) before the clock starts."""
        for method in self.chosen:
            for name in method.libraries:
                importlib.import_module(name)

    def info(self) -> dict[str, Any]:
        """Return the run record of the results file."""
        return run_info(
            self.model.device,
            [m.name for m in self.chosen],
            self.parsed,
            self.seed,
            self.granularity,
            self.target,
            top_classes=self.top_classes,
            baseline=self.baseline,
        )

    def fail(self, results: Results, i: int, method: str | None, e: Exception) -> None:
        """Record one failure, or raise it naming the input when errors='raise'."""
        error = str(e) if isinstance(e, ExplainError) else f"{type(e).__name__}: {e}"
        if self.errors == "raise":
            where = f"input {i}" + (f", method {method}" if method else "")
            if isinstance(e, ExplainError):
                message = error if error.startswith(f"input {i}") else f"{where}: {error}"
                try:
                    raised: ExplainError = type(e)(message)
                except TypeError:  # a subclass with another constructor
                    raised = ExplainError(message)
                raise raised from e
            e.add_note(f"while explaining {where}")
            raise e
        results.failures.append(Failure(input=i, method=method, error=error))
        if self.progress:
            self.progress("fail", i, method or "", error)

    def prepare(self, raw: Any, i: int, options: dict[str, Any], results: Results) -> Example | None:
        """Return the prepared Example of one raw input, or None after recording its failure."""
        try:
            if isinstance(raw, InvalidInput):
                raise InputError(raw.error)
            return self.model.prepare(raw, i, **options)
        except ExplainError as e:
            kind = {"text-classifier": "text", "causal-lm": "prompt"}.get(self.model.family, "image")
            text, path, pair = None, None, None
            if isinstance(raw, InvalidInput):
                text = raw.text
            elif kind == "image" and isinstance(raw, (str, os.PathLike)):
                path = str(raw)
            elif isinstance(raw, str):
                text = raw
            elif isinstance(raw, dict):  # a pair keeps both texts, a prompt its text: the failure shows which input
                text = next((v for k in ("text", "prompt") if isinstance(v := raw.get(k), str)), None)
                pair = raw.get("text_pair") if isinstance(raw.get("text_pair"), str) else None
            results.inputs.append(InputRecord(index=i, kind=kind, text=text, text_pair=pair, path=path, note="failed"))
            self.fail(results, i, None, e)
            return None

    def targets_of(self, example: Example) -> Any:
        """Return the target spec for one input (top_classes: its K most probable classes)."""
        if self.top_classes is None:
            return self.target
        return [f"#{k}" for k in top_indices(example.probs, self.top_classes)]

    def explain_example(
        self,
        example: Example,
        results: Results,
        methods: Sequence[Method] | None = None,
        record: bool = True,
        reseed: bool = True,
    ) -> None:
        """Run every method (or `methods`) on every target of one prepared input, recording failures.

        `record=False`: the input's record and target failure are already in `results` (the
        second part of an input explained side by side, see input_batching).
        """
        i = example.index
        if record:
            results.inputs.append(example.record)
        try:
            targets = self.model.targets(example, self.targets_of(example))
        except ExplainError as e:
            if record:
                self.fail(results, i, None, e)
            return
        for m in self.chosen if methods is None else methods:
            for t in targets:
                if self.progress:
                    self.progress("start", i, m.name, t)
                try:
                    # Each method starts from the run's seed, so its results do not depend on
                    # which methods ran before it (inside `isolated`: the caller's RNG is kept).
                    # Threads explaining inputs side by side do not reseed (input_batching seeds
                    # once before they start; the methods they run read no global RNG).
                    if reseed:
                        seed_all(self.seed)
                    exp = m.explain(self.model, example, t, self.parsed[m.name], granularity=self.granularity, seed=self.seed)
                except Exception as e:  # one input's failure must not end the others
                    self.fail(results, i, m.name, e)
                    continue
                results.append(exp)
                if self.progress:
                    self.progress("done", i, m.name, exp)


def _with_baseline(method: Method, given: Mapping[str, Any] | None, baseline: str | None) -> dict[str, Any]:
    """Return a method's settings with the run baseline filled in where it has that setting unset."""
    out = dict(given or {})
    names = {f.replace("-", "_") for f in out}
    given_own = bool(names & {"baseline", "mask"})  # "mask": the setting's old name, still read
    if baseline is not None and not given_own and "baseline" in getattr(method.Settings, "__dataclass_fields__", {}):
        out["baseline"] = baseline
    return out
