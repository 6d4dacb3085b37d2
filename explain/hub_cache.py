"""Hub ids ("bert-base-uncased", "org/name") resolved from the local Hugging Face cache, never downloaded.

The cache layout (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) keeps a repo
in models--org--name/ with refs/<revision> holding a commit hash and snapshots/<commit>/ the
files. Only that layout is read: no network call is made, whatever HF_HUB_OFFLINE says.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import CheckpointError

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


def cached_snapshot(repo_id: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """Return the cached snapshot folder of a model repo (the one refs/<revision> names), or None."""
    root = (cache or hub_cache_dir()) / f"models--{repo_id.replace('/', '--')}"
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / revision
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if (snapshots / commit / "config.json").exists():
            return snapshots / commit
    if re.fullmatch(r"[0-9a-f]{40}", revision) and (snapshots / revision / "config.json").exists():
        return snapshots / revision
    # No usable ref: the most recently written snapshot that has a config.
    found = [d for d in snapshots.iterdir() if (d / "config.json").exists()]
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def resolve_hub_id(repo_id: str) -> Path:
    """Return the cached snapshot of `repo_id`; raise CheckpointError saying how to get it when it is not cached."""
    name, _, revision = repo_id.partition("@")
    snap = cached_snapshot(name, revision or "main")
    if snap is None:
        raise CheckpointError(
            f"{repo_id} is neither a folder here nor a model in the local Hugging Face cache ({hub_cache_dir()}); "
            f"nothing is downloaded: fetch it once with `huggingface-cli download {name}` (or pass a checkpoint folder)"
        )
    return snap
