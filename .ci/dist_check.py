"""Checks the release files `python -m build` wrote: names, version, and that the sdist is complete.

Run by `make dist-check` after `python -m build` (which builds the wheel from the sdist) and
`twine check`. The wheel built from the sdist must hold exactly the files of a wheel built
straight from this tree: a package file or a bundled model that the sdist leaves out would
otherwise only show on a user's machine, as a wheel with pieces missing.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from explain.version import __version__  # noqa: E402

NAME = "explain_models"  # the distribution explain-models, as file names spell it


def main(dist: Path) -> int:
    """Return 0 when the sdist and wheel in `dist` are right, else print why and return 1."""
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    want_wheel, want_sdist = f"{NAME}-{__version__}-py3-none-any.whl", f"{NAME}-{__version__}.tar.gz"
    if [w.name for w in wheels] != [want_wheel] or [s.name for s in sdists] != [want_sdist]:
        print(f"dist check: expected {want_sdist} and {want_wheel}, found {[p.name for p in (*sdists, *wheels)]}")
        return 1
    with tarfile.open(sdists[0]) as tar:
        in_sdist = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    missing = [f for f in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml") if f not in in_sdist]
    if missing:
        print(f"dist check: the sdist lacks {missing}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "-w", tmp, str(ROOT)], check=True)
        tree = _files(next(Path(tmp).glob("*.whl")))
    from_sdist = _files(wheels[0])
    if from_sdist != tree:
        print("dist check: the wheel built from the sdist differs from one built from the tree:")
        for f in sorted(tree - from_sdist)[:20]:
            print(f"  missing from the sdist's wheel: {f}")
        for f in sorted(from_sdist - tree)[:20]:
            print(f"  only in the sdist's wheel: {f}")
        return 1
    with zipfile.ZipFile(wheels[0]) as z:
        meta = z.read(f"{NAME}-{__version__}.dist-info/METADATA").decode()
    for line in ("Name: explain-models", f"Version: {__version__}", "License-Expression: Apache-2.0",
                 "Description-Content-Type: text/markdown"):
        if line not in meta.splitlines():
            print(f"dist check: the wheel's METADATA lacks {line!r}")
            return 1
    print(f"dist check: {want_sdist} and {want_wheel} ({len(from_sdist)} files, the same as a wheel built from the tree)")
    return 0


def _files(wheel: Path) -> set[str]:
    """Return the wheel's file names, less RECORD (its hashes differ between builds)."""
    with zipfile.ZipFile(wheel) as z:
        return {n for n in z.namelist() if not n.endswith(".dist-info/RECORD")}


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
