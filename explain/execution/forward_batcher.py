"""One model call for the rows of several inputs explained side by side.

While `input_batching` explains K inputs in K worker threads, every `Runner.map` call of a
worker comes here. The batcher waits until every worker still running has a call pending,
then the engine's own thread (`serve`) runs them: calls with the same `share` key (the same
function of a row, e.g. a text row's logits) are concatenated into one `Runner.evaluate`
(rows sorted by length, padded by the adapter as for one input; batches of the sum of the
calls' batch sizes, held to the CPU activation budget where it applies:
Runner.shared_rows_per_call), and each worker gets back its own rows' outputs. Calls without a key run one by one. Only that one thread
ever runs the model (never two at once, and with the caller's torch thread settings).

A row's output must not depend on the rows beside it: the adapters pad with an attention
mask (and own models without a mask input are run without padding, by length), so sharing
changes outputs only by float rounding. If a shared call fails, its calls are run again one
by one, so one input's bad row fails that input only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

import torch

from .runner import Runner


class Stopped(BaseException):
    """The run is stopping (Ctrl-C, or another input failed with errors='raise').

    A BaseException so that the engine's per-method `except Exception` does not record it as
    the input's failure.
    """


@dataclass
class _Call:
    rows: Sequence[Any]
    fn: Callable[[list[Any]], torch.Tensor]
    key: Callable[[Any], int] | None
    size: int
    share: Hashable | None
    result: torch.Tensor | None = None
    error: BaseException | None = None
    done: bool = False


class ForwardBatcher:
    """Gathers the map calls of `workers` threads and runs each round as few model calls."""

    def __init__(self, runner: Runner, workers: int) -> None:
        self.runner = runner
        self.live = workers  # workers not yet finished
        self.calls = 0  # model-call rounds run (for tests and benchmarks)
        self.merged = 0  # map calls that shared a model call with another input's
        self._cond = threading.Condition()
        self._pending: list[_Call] = []
        self._stopped = False
        self._local = threading.local()

    # ---- workers --------------------------------------------------------------------------
    def enter(self) -> None:
        """Mark the calling thread as one of the workers (its map calls come here)."""
        self._local.worker = True

    def leave(self) -> None:
        """Mark the calling worker finished: the others no longer wait for its calls."""
        self._local.worker = False
        with self._cond:
            self.live -= 1
            self._cond.notify_all()

    def serves_this_thread(self) -> bool:
        """Return True when the calling thread is a worker of this batcher."""
        return bool(getattr(self._local, "worker", False))

    def stop(self) -> None:
        """Make every waiting and later call raise Stopped."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # ---- calls ----------------------------------------------------------------------------
    def submit(
        self,
        rows: Sequence[Any],
        fn: Callable[[list[Any]], torch.Tensor],
        key: Callable[[Any], int] | None,
        size: int,
        share: Hashable | None,
    ) -> torch.Tensor:
        """Return fn over `rows` (as Runner.evaluate would), run by `serve` with the other workers' calls."""
        call = _Call(rows, fn, key, size, share)
        with self._cond:
            self._pending.append(call)
            self._cond.notify_all()
            while not call.done:
                if self._stopped:  # a call being run is abandoned: the run is stopping
                    raise Stopped()
                self._cond.wait()
        if call.error is not None:
            raise call.error
        assert call.result is not None  # done without an error
        return call.result

    def serve(self) -> None:
        """Run the workers' calls in the calling thread, a round whenever every live worker waits, until all left.

        The model runs in the thread that called the engine, with its torch settings, as
        without batching; waits are short so that Ctrl-C reaches it.
        """
        while True:
            with self._cond:
                while not (self.live == 0 or (self._pending and len(self._pending) >= self.live)):
                    self._cond.wait(0.2)
                if self.live == 0 and not self._pending:
                    return
                batch, self._pending = self._pending, []
            self._run(batch)
            with self._cond:
                self._cond.notify_all()

    def _run(self, batch: list[_Call]) -> None:
        """Run one round: calls sharing a key as one evaluation, the rest alone; fill results."""
        self.calls += 1
        groups: dict[Any, list[_Call]] = {}
        for c in batch:
            groups.setdefault(c.share if c.share is not None else id(c), []).append(c)
        for calls in groups.values():
            if len(calls) > 1:
                try:
                    self._shared(calls)
                    self.merged += len(calls)
                    continue
                except Exception:  # one input's rows may be the cause: run each alone below
                    pass
            for c in calls:
                self._alone(c)

    def _shared(self, calls: list[_Call]) -> None:
        rows = [r for c in calls for r in c.rows]
        first = calls[0]
        size = self.runner.shared_rows_per_call(rows, first.key, [c.size for c in calls])
        out = self.runner.evaluate(rows, first.fn, key=first.key, size=size)
        start = 0
        for c in calls:
            c.result, c.done = out[start : start + len(c.rows)], True
            start += len(c.rows)

    def _alone(self, c: _Call) -> None:
        try:
            c.result = self.runner.evaluate(c.rows, c.fn, key=c.key, size=c.size)
        except BaseException as e:  # handed to the worker that asked, raised in its thread
            c.error = e
        c.done = True
