"""Explaining several inputs side by side, so that their rows share model calls.

With `batch_inputs=K` the engine takes the inputs a window of 4K at a time: it prepares them
(one forward each, in order), sorts them by token length (length buckets: neighbours in
length run together, so shared calls pad little), and explains them K at a time. Each of the
K runs the batchable methods (`Method.batchable`: SHAP, LIME, feature ablation) in its own
thread; every model evaluation they ask for goes to one ForwardBatcher, which runs the K
inputs' pending rows as one model call. Methods that are not batchable (IG, attention,
Grad-CAM, occlusion) then run one input at a time in the calling thread, as without batching.

What stays as one-at-a-time:
- scores: a row's output does not depend on the rows padded beside it (attention masks; own
  models without a mask input are run unpadded), so scores equal one-at-a-time scores up to
  float rounding; every input's methods draw from their own seeded streams (LIME's
  RandomState, shap's tie-break stream per call), never from a shared global one;
- cost: rows are counted per thread, so `rows` and `cached_rows` are the input's own;
- order: results, failures and progress events are handed on in input order, one window at
  a time, and `on_input` is called after each window (finished inputs are saved; Ctrl-C keeps
  every input that finished, resume explains the rest);
- failures: errors="record" records one input's failure and the others go on; errors="raise"
  stops the other threads at their next model call and raises the failure of the lowest
  input index among those that failed.

`Explanation.seconds` under batching is the wall time from that method's start to its end
for its input, which includes waiting while the other inputs' rows run in the shared calls:
the seconds of one window's explanations overlap and their sum exceeds the run's wall time
(`results.run["seconds"]`, the run's compute time, is unchanged in meaning).
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable, Protocol, Sequence

from ..adapters.base import Adapter, Example
from ..errors import ExplainError
from ..results.explanation import Results
from ..execution.forward_batcher import ForwardBatcher, Stopped
from ..methods.base import Method
from ..execution.scope import seed_all


class _Job(Protocol):
    """What this module needs of the engine's job (explain.running.engine._Job; named here: no import cycle)."""

    model: Adapter
    chosen: list[Method]
    seed: int
    progress: Callable[[str, int, str, Any], None] | None

    def prepare(self, raw: Any, i: int, options: dict[str, Any], results: Results) -> Example | None: ...

    def explain_example(
        self, example: Example, results: Results, methods: Sequence[Method] | None = None, record: bool = True, reseed: bool = True
    ) -> None: ...


# Inputs in flight when batch_inputs is "auto". Measured on CPU (benchmarks/batching.py, 100
# texts of 10-15 words, MiniLM-sized, 1 torch thread, idle 2-core machine): SHAP 0.96-0.99x with
# 8-16 in flight, LIME 0.96-0.99x (its 400 rows already fill a call; bigger calls are no faster
# on a CPU). No gain worth a default, so "auto" is one at a time; GPUs are not measured yet.
AUTO_IN_FLIGHT: dict[str, int] = {"cpu": 1}
WINDOW = 4  # inputs prepared and sorted by length together: WINDOW x K


def resolve(value: Any, device_type: str, methods: Sequence[Method]) -> int:
    """Return how many inputs run side by side: `value` checked, "auto" (or None) by device and methods."""
    if value is None or value == "auto":
        if not any(m.batchable for m in methods):
            return 1  # nothing to share: threads would only add overhead
        return AUTO_IN_FLIGHT.get(device_type, 1)
    text = str(value).strip()
    if isinstance(value, bool) or not (isinstance(value, int) or text.isdigit()) or int(text) < 1:
        raise ExplainError(f"batch_inputs={value!r}: give a number of inputs >= 1 (1: one at a time) or 'auto'")
    return int(text)


def check_batch_inputs(value: Any) -> None:
    """Raise ExplainError unless `value` is "auto" or a whole number >= 1 (as `--batch-inputs` takes it)."""
    resolve(value, "cpu", ())


def input_length(example: Example) -> int:
    """Return the example's length in tokens (0 for inputs without token ids, e.g. images)."""
    ids = getattr(example.state, "ids", None)
    return len(ids) if ids is not None else 0


class _Out:
    """One input's results and progress events, kept until its window is handed on."""

    def __init__(self, job: _Job, example: Example, results: Results) -> None:
        self.example = example
        self.results = Results(model=results.model, inputs=[], run=results.run)
        self.events: list[tuple[str, int, str, Any]] = []
        self.error: BaseException | None = None
        self.complete = False
        self.job = copy.copy(job)  # the same choices, with progress events kept for later
        self.job.progress = (lambda *event: self.events.append(event)) if job.progress else None


def explain_side_by_side(
    job: _Job,
    todo: Sequence[tuple[int, Any]],
    options: dict[str, Any],
    results: Results,
    on_input: Callable[[Results], None] | None,
    k: int,
) -> None:
    """Explain the (index, raw input) pairs `todo` into `results`, K inputs sharing model calls."""
    window = WINDOW * k
    for start in range(0, len(todo), window):
        examples = [ex for i, raw in todo[start : start + window] if (ex := job.prepare(raw, i, options, results))]
        examples.sort(key=input_length)  # stable: like lengths keep their input order
        outs: dict[int, _Out] = {}
        try:
            for g in range(0, len(examples), k):
                _group(job, examples[g : g + k], results, outs)
        finally:  # also on Ctrl-C: every input that finished is handed on
            _hand_on(job, outs, results)
            if on_input:
                on_input(results)


def _group(job: _Job, group: list[Example], results: Results, outs: dict[int, _Out]) -> None:
    """Explain one group side by side: batchable methods in threads, the rest here, one by one."""
    batched = [m for m in job.chosen if m.batchable]
    rest = [m for m in job.chosen if not m.batchable]
    mine = {ex.index: _Out(job, ex, results) for ex in group}
    runner = job.model.runner
    batcher = ForwardBatcher(runner, len(group))
    seed_all(job.seed)  # what a method sees as torch's initial seed (e.g. the image noise fill)
    threads = [
        threading.Thread(target=_work, args=(batcher, out, batched), name=f"explain-input-{i}", daemon=True)
        for i, out in mine.items()
    ]
    runner.batcher = batcher
    try:
        for t in threads:
            t.start()
        batcher.serve()  # runs every model call of the group here, until the threads are done
        for t in threads:
            t.join()
    except BaseException:  # Ctrl-C: the threads stop at their next model call
        batcher.stop()
        for t in threads:
            t.join()
        raise
    finally:
        runner.batcher = None
    failed = sorted((i, o.error) for i, o in mine.items() if o.error is not None and not isinstance(o.error, Stopped))
    if failed:
        raise failed[0][1]
    for i, out in sorted(mine.items()):
        if rest:
            out.job.explain_example(out.example, out.results, rest, record=False)
        out.complete = True
        outs[i] = out


def _work(batcher: ForwardBatcher, out: _Out, methods: list[Method]) -> None:
    batcher.enter()
    try:
        out.job.explain_example(out.example, out.results, methods, reseed=False)
    except BaseException as e:  # errors="raise", or Stopped: handed to the calling thread
        out.error = e
        if not isinstance(e, Stopped):
            batcher.stop()  # the run raises: the other inputs need not finish
    finally:
        batcher.leave()


def _hand_on(job: _Job, outs: dict[int, _Out], results: Results) -> None:
    """Move finished inputs' results into `results` in input order and replay their progress."""
    order = {m.name: n for n, m in enumerate(job.chosen)}
    for i in sorted(outs):
        out = outs[i]
        if not out.complete:
            continue
        results.inputs.extend(out.results.inputs)
        results.extend(sorted(out.results, key=lambda e: order[e.method]))  # stable: target order kept
        results.failures.extend(sorted(out.results.failures, key=lambda f: -1 if f.method is None else order[f.method]))
        if job.progress:
            for event in out.events:
                job.progress(*event)
    outs.clear()
    results.inputs.sort(key=lambda r: r.index)
    results.sort(key=lambda e: e.input)
    results.failures.sort(key=lambda f: f.input)
