"""The one batched runner: every model evaluation of every method goes through it.

It chunks rows into batches sized to the device, runs them in inference mode (or with grad
when a method needs gradients), halves the batch and retries on out-of-memory, optionally
autocasts on GPU, and counts the rows it evaluated so every result can report its cost.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any, Callable, Hashable, Iterator, Protocol, Sequence, TypeVar

import torch

from ..errors import ExplainError

T = TypeVar("T")


class SharedCalls(Protocol):
    """What `map` needs of explain.execution.forward_batcher.ForwardBatcher (named here: no import cycle)."""

    def serves_this_thread(self) -> bool: ...

    def submit(
        self, rows: Sequence[Any], fn: Callable[[list[Any]], torch.Tensor], key: Callable[[Any], int] | None,
        size: int, share: Hashable | None,
    ) -> torch.Tensor: ...

DEFAULT_BATCH = {"cpu": 64, "cuda": 256}
# CPU, no batch size set, a Hugging Face model of known hidden size: text rows are batched to
# about this many activation elements (tokens x hidden size) per model call, 8 to 256 rows.
# Measured on 2 cores: a 384-wide MiniLM ran 16-20-token rows 10-15% faster per row in calls of
# 128-256 rows than of 64 (about 4,096 tokens), 64-token rows fastest at 64 and 256-token rows
# at 8-16; the 768-wide BERT-base ran 20-32-token rows 3-7% slower in calls of 128 than of 64
# (2,048 tokens at 32). Other models keep the flat batch size.
ELEMENTS_PER_CALL = {"cpu": 4096 * 384}
ROWS_PER_CALL = (8, 256)


class Runner:
    """Batches rows through a model function, counting rows and backing off on OOM."""

    def __init__(
        self,
        device: torch.device,
        batch_size: int | None = None,
        autocast: str | None = None,
        max_memory: int | str | None = None,
    ) -> None:
        self.device = device
        self.max_memory = parse_size(max_memory) if max_memory is not None else None
        self.batch_size = batch_size or DEFAULT_BATCH.get(device.type, 64)
        self.fixed = batch_size is not None  # a set batch size (or one an out-of-memory forced) is kept as is
        self.width: int | None = None  # the model's hidden size, when the loader knows it
        if autocast not in (None, "bf16", "fp16"):
            raise ExplainError(f"unknown autocast {autocast!r}: use bf16, fp16 or leave it off")
        self.autocast = autocast
        # Rows are counted per thread: inputs explained side by side (input_batching) each
        # count their own rows, so every Explanation reports its input's cost only.
        self._counter = threading.local()
        # set while inputs are explained side by side: their map calls share model calls
        self.batcher: SharedCalls | None = None
        self.fitted: dict[str, int] = {}  # with_backoff: the size that fitted after an OOM, per `what`

    def __getstate__(self) -> dict[str, Any]:
        """Return the state a copy or pickle keeps: not the per-thread counters or the batcher."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_counter", "batcher")}
        state["rows"] = self.rows
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rows = state.pop("rows", 0)
        self.__dict__.update(state, _counter=threading.local(), batcher=None)
        self.rows = rows

    @property
    def rows(self) -> int:
        """Return the rows this thread has evaluated through the runner."""
        return int(getattr(self._counter, "rows", 0))

    @rows.setter
    def rows(self, value: int) -> None:
        self._counter.rows = int(value)

    @contextlib.contextmanager
    def context(self, grad: bool = False) -> Iterator[None]:
        """Enter inference mode (or grad mode) and autocast when asked and on GPU."""
        grad_ctx = torch.enable_grad() if grad else torch.inference_mode()
        with grad_ctx:
            if self.autocast and self.device.type == "cuda":
                dtype = torch.bfloat16 if self.autocast == "bf16" else torch.float16
                with torch.autocast("cuda", dtype=dtype):
                    yield
            else:
                yield

    def map(
        self,
        rows: Sequence[T],
        fn: Callable[[list[T]], torch.Tensor],
        *,
        key: Callable[[T], int] | None = None,
        batch_size: int | None = None,
        share: Hashable | None = None,
    ) -> torch.Tensor:
        """Return fn applied to `rows` in batches, concatenated in the rows' original order.

        `key` (e.g. a row's length) sorts rows before batching so that rows of like size share
        a batch and padding stays short; outputs are put back in the caller's order.
        `share` says which calls compute the same function of a row (e.g. "a text row's
        logits"): while inputs are explained side by side, calls with equal `share` from
        several inputs go through one model call (None: this call's rows are its own).
        """
        n = len(rows)
        if n == 0:
            raise ValueError("Runner.map needs at least one row")
        size = max(1, batch_size or self.rows_per_call(rows, key))
        batcher = self.batcher
        if batcher is not None and batcher.serves_this_thread():
            result = batcher.submit(rows, fn, key, size, share)
        else:
            result = self.evaluate(rows, fn, key=key, size=size)
        self.rows += n
        return result

    def rows_per_call(self, rows: Sequence[T], key: Callable[[T], int] | None) -> int:
        """Return the rows per model call: the batch size, or on CPU with none set, a known hidden
        size and rows whose `key` is their length in tokens, as many as fill ELEMENTS_PER_CALL."""
        budget = ELEMENTS_PER_CALL.get(self.device.type)
        if self.fixed or budget is None or key is None or not self.width:
            return self.batch_size
        longest = max(key(r) for r in rows)
        return max(ROWS_PER_CALL[0], min(ROWS_PER_CALL[1], budget // (max(1, longest) * self.width)))

    def shared_rows_per_call(self, rows: Sequence[T], key: Callable[[T], int] | None, sizes: Sequence[int]) -> int:
        """Return the rows per model call when several inputs' calls (of `sizes` rows per call) run as one.

        The sum of the calls' sizes (on GPU many short rows cost about what one does), held to
        rows_per_call where the CPU activation budget applies: on CPU a call of 8 inputs' LIME
        rows (8 x 200) ran slower per row than calls of 200.
        """
        total = sum(sizes)
        budgeted = not self.fixed and self.device.type in ELEMENTS_PER_CALL and key is not None and bool(self.width)
        return min(total, self.rows_per_call(rows, key)) if budgeted else total

    def evaluate(
        self,
        rows: Sequence[T],
        fn: Callable[[list[T]], torch.Tensor],
        *,
        key: Callable[[T], int] | None,
        size: int,
    ) -> torch.Tensor:
        """Return fn over `rows` in batches of `size` (halved on out-of-memory), in the rows' order; counts nothing."""
        n = len(rows)
        order = sorted(range(n), key=lambda i: key(rows[i])) if key else list(range(n))
        outs: list[torch.Tensor] = []
        start = 0
        with self.context():
            while start < n:
                idx = order[start : start + size]
                try:
                    out = fn([rows[i] for i in idx])
                except torch.OutOfMemoryError:
                    if size == 1:
                        raise ExplainError(
                            "out of memory even with batch size 1; use a smaller --max-length "
                            "or a device with more memory"
                        ) from None
                    size = max(1, size // 2)
                    self.batch_size = min(self.batch_size, size)
                    self.fixed = True
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                outs.append(out.detach().float().cpu())
                start += len(idx)
        result = torch.cat(outs)
        if key:
            inverse = torch.empty(n, dtype=torch.long)
            inverse[torch.tensor(order)] = torch.arange(n)
            result = result[inverse]
        return result

    def with_backoff(self, fn: Callable[[int], T], size: int, *, what: str = "this step") -> T:
        """Return fn(size); on out-of-memory call it again with half the size, down to 1.

        For gradient paths whose chunking lives in the method (IG's internal batch, Grad-CAM's
        and attention's capture passes): `fn` must run its whole work in chunks of `size` rows.
        A size that had to halve is remembered per `what`: later calls start no larger.
        """
        size = max(1, min(int(size), self.fitted.get(what, int(size))))
        while True:
            try:
                return fn(size)
            except torch.OutOfMemoryError:
                if size == 1:
                    raise ExplainError(
                        f"out of memory in {what} even with one row per call; use a smaller "
                        "--max-length, --max-memory, or a device with more memory"
                    ) from None
                size = max(1, size // 2)
                self.fitted[what] = size
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def rows_within(self, bytes_per_row: float, wanted: int) -> int:
        """Return how many of `wanted` rows one call may hold under the memory cap (at least 1)."""
        if self.max_memory is None or bytes_per_row <= 0:
            return max(1, wanted)
        return max(1, min(wanted, int(self.max_memory // bytes_per_row)))

    def count(self, rows: int) -> None:
        """Record rows evaluated outside map (e.g. by captum's own internal batching)."""
        self.rows += int(rows)


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_size(value: int | str) -> int:
    """Return a memory size in bytes from an int or a string such as "512MB", "2GiB" or "1.5g"."""
    if isinstance(value, bool):
        raise ExplainError(f"memory size {value!r} is not a size")
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _UNITS:
            raise ExplainError(f"memory size {value!r} is not a size such as 512MB or 2GB")
        size = int(float(m.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ExplainError(f"memory size {value!r} must be positive")
    return size
