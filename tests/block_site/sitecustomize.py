"""Test-only: make a process's model calls block once its own progress reaches a point.

With EXPLAIN_TEST_BLOCK_WHEN="GLOB:N" in the environment and this folder on PYTHONPATH, every
`explain.execution.runner.Runner.map` / `with_backoff` call waits forever once N files match GLOB. The
interrupt tests use it so that the run they interrupt cannot finish first, however fast the
machine: the run blocks by itself once it has saved work (results.json, or 3 Ray shards), and
the test sends Ctrl-C to a run that is certainly still going. Ray's worker processes inherit the
environment, so they block the same way. Without the variable this file does nothing.
"""

from __future__ import annotations

import glob
import importlib.abc
import os
import sys
import time
from typing import Any

_SPEC = os.environ.get("EXPLAIN_TEST_BLOCK_WHEN")


def _armed(pattern: str, count: int) -> bool:
    return len(glob.glob(pattern)) >= count


def _blocking(fn: Any, pattern: str, count: int) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        while _armed(pattern, count):  # forever, once armed: only a signal ends the run now
            time.sleep(0.05)
        return fn(*args, **kwargs)

    return wrapper


class _PatchRunner(importlib.abc.MetaPathFinder):
    """Wrap explain.execution.runner.Runner's model-call entry points right after the module loads."""

    def __init__(self, pattern: str, count: int) -> None:
        self.pattern, self.count = pattern, count

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "explain.execution.runner":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                run_module = spec.loader.exec_module

                def exec_module(module: Any) -> None:
                    run_module(module)
                    for attr in ("map", "with_backoff"):
                        setattr(module.Runner, attr, _blocking(getattr(module.Runner, attr), self.pattern, self.count))

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
                return spec
        return None


if _SPEC:
    _pattern, _count = _SPEC.rsplit(":", 1)
    sys.meta_path.insert(0, _PatchRunner(_pattern, int(_count)))
