"""Hub ids ("bert-base-uncased", "org/name") resolved from the local Hugging Face cache, never downloaded.

The cache layout (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) keeps a repo
in models--org--name/ with refs/<revision> holding a commit hash and snapshots/<commit>/ the
files. Only that layout is read: no network call is made, whatever HF_HUB_OFFLINE says.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import CheckpointError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?(@[A-Za-z0-9._-]+)?$")


def looks_like_hub_id(text: str) -> bool:
    """Return True for "name" or "org/name" that is not a path on this machine."""
    return bool(_ID.match(text)) and not text.endswith((".py", ".pt", ".pth", ".json", ".safetensors")) and ".." not in text


def hub_cache_dir() -> Path:
    """Return the Hugging Face hub cache folder this process would use (read from the environment now)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def cached_snapshot(repo_id: str, revision: str | None = None, cache: Path | None = None) -> Path | None:
    """Return the cached snapshot folder of a model repo at `revision` (a ref or a 40-hex commit), or None.

    With no revision asked for: refs/main's snapshot, else the most recently written one. An asked
    revision is that revision or nothing: another cached revision is never substituted for it.
    """
    root = (cache or hub_cache_dir()) / f"models--{repo_id.replace('/', '--')}"
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / (revision or "main")
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if (snapshots / commit / "config.json").exists():
            return snapshots / commit
    if revision is not None:
        if re.fullmatch(r"[0-9a-f]{40}", revision) and (snapshots / revision / "config.json").exists():
            return snapshots / revision
        return None
    # No revision asked for and no usable refs/main: the most recently written snapshot that has a config.
    found = [d for d in snapshots.iterdir() if (d / "config.json").exists()]
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def resolve_hub_id(repo_id: str) -> Path:
    """Return the cached snapshot of `repo_id` ("org/name[@revision]"); raise CheckpointError saying how to get it when it is not cached.

    The snapshot folder is named by its commit, so the returned path (ModelInfo.path) records which revision was explained.
    """
    name, _, revision = repo_id.partition("@")
    snap = cached_snapshot(name, revision or None)
    if snap is None:
        fetch = f"huggingface-cli download {name}" + (f" --revision {revision}" if revision else "")
        what = f"revision {revision} of {name} is not in the local Hugging Face cache" if revision else (
            f"{repo_id} is neither a folder here nor a model in the local Hugging Face cache")
        raise CheckpointError(
            f"{what} ({hub_cache_dir()}); nothing is downloaded: fetch it once with `{fetch}` (or pass a checkpoint folder)"
        )
    return snap
