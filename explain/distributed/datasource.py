"""A Ray Data datasource over planned Parts: one read task per part, one block per shard of rows."""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from .sources import Part, rows

_BYTES_PER_ROW = 256  # a rough size of one encoded input, for Ray's memory planning


class InputDatasource(Datasource):
    """Reads a job's inputs where they are used; rows are (index: int64, item: JSON string)."""

    def __init__(self, parts: Sequence[Part], skip: set[int], shard_size: int, cwd: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._parts = list(parts)
        self._skip = skip
        self._shard_size = shard_size
        self._cwd = cwd

    def estimate_inmemory_data_size(self) -> int:
        """Return a rough size of all rows."""
        return sum(p.count for p in self._parts) * _BYTES_PER_ROW

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None) -> list[ReadTask]:
        """Return one read task per part (a file is read by one task, in order)."""
        tasks = []
        for part in self._parts:
            skip = frozenset(i for i in self._skip if part.first <= i < part.first + part.count)
            meta = BlockMetadata(
                num_rows=part.count - len(skip),
                size_bytes=(part.count - len(skip)) * _BYTES_PER_ROW,
                input_files=(part.path,) if part.path else None,
                exec_stats=None,
            )
            tasks.append(ReadTask(_reader(part, skip, self._shard_size, self._cwd), meta))
        return tasks


def _reader(part: Part, skip: frozenset[int], shard_size: int, cwd: str) -> Any:
    def read() -> Iterator[pa.Table]:
        if os.path.isdir(cwd):  # relative paths mean what they meant to the driver
            os.chdir(cwd)
        for index, items in rows(part, skip, shard_size):
            yield pa.table({"index": pa.array(index, pa.int64()), "item": pa.array(items, pa.string())})

    return read
