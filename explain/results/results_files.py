"""open_results: the one entry that reads saved results, whichever form they were written in.

It sits above both codecs - `results_io` (one results file) and `distributed.shards` (a sharded
run's folder, local or behind a URI pyarrow opens) - so that neither imports the other.
"""

from __future__ import annotations

import os

from .shards import is_sharded, open_sharded
from ..errors import InputError
from .explanation import Results
from .results_io import read_file


def open_results(path: str | os.PathLike[str]) -> Results:
    """Read saved results and return equal Results (no model needed).

    `path` is a results file written by `explain.save`, a run's output folder holding
    results.json, or a sharded folder (`--engine ray`), local or a URI; shards are merged.
    """
    if is_sharded(path):
        return open_sharded(path)
    if "://" in str(path):
        raise InputError(f"no sharded results at {path} (no manifest.json)")
    return read_file(path)
