"""Progress on stderr: a live bar on a terminal, plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from explain.results.explanation import Explanation


class Progress:
    """Tracks inputs x methods; prints rate and time left."""

    def __init__(self, total: int, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.total = max(1, total)
        self.done = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()
        self.current: tuple[int, str] | None = None

    def __call__(self, event: str, index: int, method: str, payload: Any) -> None:
        """Receive an engine event ('start', 'done', 'fail') for input `index` and `method`."""
        if event == "start":
            if self.current != (index, method):
                self.current = (index, method)
                self.done += 1
            return
        if self.quiet:
            return
        if event == "fail":
            where = "" if str(payload).startswith(f"input {index}") else f"input {index}: "
            self._line(f"{method + ' failed on ' if method else 'failed: '}{where}{payload}")
        elif self.tty:
            self._bar()
        else:
            e: Explanation = payload
            self._line(
                f"[{self.done}/{self.total}] input {index} {method} -> {e.target.label}: "
                f"{e.seconds:.2f}s, {e.rows} rows"
            )

    def _bar(self) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 28
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {rate:.1f}/s, {left:.0f}s left ")
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the live bar's line."""
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
