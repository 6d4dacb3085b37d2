"""Checks an installed explain wheel: one import name, the CLI starts, the demo runs from it.

Run by `make wheel-check` inside build/wheel-check, with the wheel installed into a fresh venv.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

wheel = Path(sys.argv[1])
tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
stray = sorted(t for t in tops if not (t == "explain" or t.endswith(".dist-info")))
if stray:
    sys.exit(f"wheel check: {wheel.name} installs top-level {stray}; only 'explain' may be installed")
for name in ("cli", "reports"):
    if importlib.util.find_spec(name) is not None:
        sys.exit(f"wheel check: a top-level '{name}' package is importable from the installed wheel")
import explain  # noqa: E402

installed = Path(explain.__file__).resolve()
if "site-packages" not in installed.parts:
    sys.exit(f"wheel check: explain was imported from {installed}, not from the installed wheel")
exe = Path(sys.executable).parent / "explain"
subprocess.run([str(exe), "--help"], check=True, stdout=subprocess.DEVNULL)
subprocess.run([str(exe), "demo", "--out", "demo-from-wheel"], check=True, stdout=subprocess.DEVNULL)
for report in ("index.html",):
    if not (Path("demo-from-wheel") / report).is_file():
        sys.exit(f"wheel check: the demo wrote no {report}")
print(f"wheel check: {wheel.name} installs only 'explain'; explain --help and explain demo ran from it")
