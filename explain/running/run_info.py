"""The run record of a results file: when, what, with which settings and library versions."""

from __future__ import annotations

import datetime
import platform
from importlib import metadata
from typing import Any, Iterable, Mapping

from ..version import __version__

# Distribution names whose versions a results file records. Read from the installed metadata:
# importing captum, shap or transformers only to read `__version__` cost seconds per run.
_LIBRARIES = ("torch", "transformers", "captum", "shap", "lime", "numpy")


def library_version(name: str) -> str | None:
    """Return the installed version of distribution `name`, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Return the versions of explain, Python and the libraries the methods call."""
    return {"explain": __version__, "python": platform.python_version(), **{n: library_version(n) for n in _LIBRARIES}}


def plain_target(target: Any) -> Any:
    """Return a target spec as JSON stores it (None, an int, a string or a list)."""
    if target is None or isinstance(target, (int, str)):
        return target
    if isinstance(target, (list, tuple)):
        return [t if isinstance(t, (int, str)) else str(t) for t in target]
    return str(target)


def run_info(
    device: Any,
    methods: Iterable[str],
    parsed: Mapping[str, Any],
    seed: int,
    granularity: str,
    target: Any,
    **extra: Any,
) -> dict[str, Any]:
    """Return the `run` record of a results file; `extra` adds entries such as the run baseline."""
    info: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "methods": list(methods),
        "settings": {k: vars(v) for k, v in parsed.items()},
        "seed": seed,
        "granularity": granularity,
        "target": plain_target(target),
        "device": str(device),
        "versions": versions(),
    }
    info.update({k: v for k, v in extra.items() if v is not None})
    return info
