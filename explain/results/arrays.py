"""The binary file beside a results file: its large arrays in one NumPy .npz, read lazily.

results.json stays the readable index (inputs, targets, words, scores per feature, checks). The
arrays a person never reads as numbers - pixel maps (an image's scores) and any extra array of
more than INLINE_MAX values (attention maps per layer and head, LIME's segments) - go to one
archive beside it, `<stem>.arrays-<12 hex>.npz`, and the index names each one where it stands:

    "scores": {"array": "e3.scores", "dtype": "float32", "shape": [224, 224]}

The archive is a plain .npz (`numpy.load` opens it): one deflated .npy member per array, written
with fixed timestamps, so equal Results give a byte-equal file. Its name carries the start of its
sha256: a save never overwrites the archive an older results.json names (a run interrupted
between the two writes leaves a readable pair), and the save removes the old one after.

Attention maps (weights in [0, 1]) are stored as float16: about 3 significant digits, more than
the report's 12-bit colour scale and its 4-digit hover show; they read back as float32. Every
other array keeps its dtype exactly.

Reading never loads the whole archive: an explanation's pixel map or attention map is read when
it is used and not kept (a small cache holds the last few), so a report over thousands of images
holds one map at a time.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Iterator, Mapping

import numpy as np

from ..errors import InputError
from .explanation import Explanation

INLINE_MAX = 1024  # extra arrays with more values than this go to the archive; smaller ones stay in the index
FLOAT16 = frozenset({"attention", "token_attention", "rollout", "token_rollout"})  # extras stored as float16
CACHE_BYTES = 64 * 2**20  # arrays kept after reading, most recent first
_DATE = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: no clock in the file
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class ArrayWriter:
    """Collects the arrays of one save and returns them as one .npz archive's bytes."""

    def __init__(self) -> None:
        self._members: list[tuple[str, np.ndarray]] = []

    def add(self, owner: int, key: str, a: np.ndarray, float16: bool = False) -> dict[str, Any]:
        """Add array `a` (explanation `owner`'s `key`) and return the index's reference to it."""
        k = len(self._members)
        name = f"e{owner}.{key}" if _NAME.match(key) else f"e{owner}.a{k}"
        stored = a.astype(np.float16) if float16 and a.dtype.kind == "f" else a
        self._members.append((name, np.ascontiguousarray(stored)))
        ref: dict[str, Any] = {"array": name, "dtype": str(a.dtype), "shape": list(a.shape)}
        if stored.dtype != a.dtype:
            ref["stored"] = str(stored.dtype)
        return ref

    def __len__(self) -> int:
        return len(self._members)

    def finish(self) -> bytes:
        """Return the archive: a deflated .npy member per array, fixed timestamps (same arrays, same bytes)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", allowZip64=True) as z:
            for name, a in self._members:
                member = io.BytesIO()
                np.lib.format.write_array(member, a, allow_pickle=False)
                info = zipfile.ZipInfo(name + ".npy", date_time=_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, member.getvalue(), compresslevel=6)
        return buf.getvalue()


def local_file(path: str) -> BinaryIO:
    """Open a local archive for reading (a module-level function: an ArrayFile's opener must pickle)."""
    return open(path, "rb")


def file_name(stem: str, data: bytes) -> str:
    """Return the archive's name beside `<stem>.json`: `<stem>.arrays-<first 12 hex of its sha256>.npz`."""
    return f"{stem}.arrays-{hashlib.sha256(data).hexdigest()[:12]}.npz"


class ArrayFile:
    """One archive, opened on first use; members are read one at a time, on demand.

    `opener` returns a seekable binary file; `keep_open` keeps that handle between reads (a single
    results file: a later save may replace the archive, and the open handle still reads the old
    one), else each read opens and closes it (shards: a run of thousands would exhaust handles).
    """

    def __init__(self, opener: Callable[[], BinaryIO], where: str, expect: Mapping[str, Any], keep_open: bool = True) -> None:
        self.opener, self.where, self.expect, self.keep_open = opener, where, dict(expect), keep_open
        self._zip: zipfile.ZipFile | None = None
        self._file: BinaryIO | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cached = 0

    def open(self) -> zipfile.ZipFile:
        """Return the archive, checked against what the index says it is; raise InputError when it is not."""
        if self._zip is not None:
            return self._zip
        try:
            f = self.opener()
        except FileNotFoundError:
            raise InputError(f"{self.where} is missing: the results file keeps its large arrays there; "
                             "copy it together with the results file") from None
        except OSError as e:
            raise InputError(f"cannot read {self.where}: {e}") from e
        try:
            size = f.seek(0, io.SEEK_END)
            f.seek(0)
            if "bytes" in self.expect and size != int(self.expect["bytes"]):
                raise InputError(f"{self.where} is not the arrays file its results file was saved with "
                                 f"({size:,} bytes, expected {int(self.expect['bytes']):,})")
            z = zipfile.ZipFile(f)
        except zipfile.BadZipFile as e:
            f.close()
            raise InputError(f"{self.where} is not a valid arrays file: {e}") from e
        except BaseException:
            f.close()
            raise
        self._zip, self._file = z, f
        return z

    def get(self, member: str, dtype: str) -> np.ndarray:
        """Return array `member` as `dtype`, read-only (from the cache when it was read just before)."""
        with self._lock:
            hit = self._cache.get(member)
            if hit is not None:
                self._cache.move_to_end(member)
                return hit
            z = self.open()
            try:
                with z.open(member + ".npy") as f:
                    a = np.lib.format.read_array(f, allow_pickle=False)
            except KeyError:
                raise InputError(f"{self.where} holds no array {member!r}: it is not the file its results file names") from None
            except (ValueError, zipfile.BadZipFile, OSError) as e:
                raise InputError(f"{self.where}: cannot read array {member!r}: {e}") from e
            finally:
                if not self.keep_open:
                    self._shut()
            a = a.astype(dtype, copy=False)
            a.setflags(write=False)
            self._remember(member, a)
            return a

    def _remember(self, member: str, a: np.ndarray) -> None:
        if a.nbytes > CACHE_BYTES // 4:
            return
        self._cache[member] = a
        self._cached += a.nbytes
        while self._cached > CACHE_BYTES:
            _, old = self._cache.popitem(last=False)
            self._cached -= old.nbytes

    def close(self) -> None:
        """Close the archive's handle (a later read opens it again)."""
        with self._lock:
            self._shut()

    def _shut(self) -> None:
        if self._zip is not None:
            self._zip.close()
            if self._file is not None:
                self._file.close()
        self._zip = self._file = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (Ray, multiprocessing): the opener travels, the handle, lock and cache do not.
        return {"opener": self.opener, "where": self.where, "expect": self.expect, "keep_open": self.keep_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __deepcopy__(self, memo: dict[int, Any]) -> ArrayFile:
        return self  # read-only: copies of a Results share their archive


class Stored:
    """An array of an archive, not read yet: `load()` reads it (the explanation does not keep it)."""

    __slots__ = ("file", "member", "dtype", "shape")

    def __init__(self, file: ArrayFile, member: str, dtype: str, shape: tuple[int, ...]) -> None:
        self.file, self.member, self.dtype, self.shape = file, member, dtype, shape

    def load(self) -> np.ndarray:
        """Return the array (read-only), checked against the shape the index gives."""
        a = self.file.get(self.member, self.dtype)
        if tuple(a.shape) != self.shape:
            raise InputError(f"{self.file.where}: array {self.member!r} has shape {tuple(a.shape)}, the index says {self.shape}")
        return a

    def __repr__(self) -> str:
        return f"<{self.dtype} array {self.shape} in {self.file.where}>"


class LazyExtras(Mapping[str, Any]):
    """An explanation's extras whose large arrays stay in the archive until looked up."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        v = self._values[key]
        return v.load() if isinstance(v, Stored) else v

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._values.items()) + "}"


class StoredExplanation(Explanation):
    """An Explanation read from a results file: a pixel map stays in the archive until `scores` is used.

    Everything else is an Explanation's: equal to the Explanation it was saved from, and
    `replace()` gives a copy that holds the arrays it was given.
    """

    @property
    def scores(self) -> np.ndarray:
        """Return the scores (read from the archive on each use when they live there)."""
        v = self.__dict__["_scores"]
        return v.load() if isinstance(v, Stored) else v

    @scores.setter
    def scores(self, value: Any) -> None:
        # The dataclass's __init__ sets each field with object.__setattr__, which lands here.
        self.__dict__["_scores"] = value
