"""Dataset-scale runs: explain many inputs on a Ray cluster into a sharded results folder.

    from explain.distributed import FileInput, RayOptions, plan, run_ray
    parts = plan([FileInput("reviews.jsonl")])
    run_ray("path/to/checkpoint", parts, "out/", job={"methods": ["ig"], "seed": 0},
            options=RayOptions(workers=2))
    results = explain.open_results("out/")        # the shards merged into one Results

Ray is imported only when a run starts (`pip install "explain[distributed]"`); reading a
sharded folder back needs no Ray.
"""

from __future__ import annotations

from .ray_engine import RayOptions, RunSummary
from .ray_engine import run as run_ray
from ..results.shards import LAYOUT, is_sharded, iter_shards, open_sharded
from .sources import FileInput, Part, plan, read_file

__all__ = ["LAYOUT", "FileInput", "Part", "RayOptions", "RunSummary", "is_sharded", "iter_shards", "open_sharded", "plan", "read_file", "run_ray"]
