"""Hub ids resolve from a local Hugging Face cache folder, with the network disabled for the process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import explain
from explain.errors import CheckpointError
from explain.loading.hub_cache import looks_like_hub_id

from conftest import ROOT, save_bert

COMMIT = "0123456789abcdef0123456789abcdef01234567"
NO_NETWORK = """import socket
def _refuse(*a, **k):
    raise OSError("network disabled for this test")
socket.socket.connect = _refuse
socket.create_connection = _refuse
"""


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder in the hub layout: models--org--tiny-bert/{blobs, refs/main, snapshots/COMMIT}."""
    root = tmp_path_factory.mktemp("hf") / "hub"
    repo = root / "models--org--tiny-bert"
    built = save_bert(tmp_path_factory.mktemp("tiny-bert-src"))
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in built.iterdir():  # files live in blobs/, snapshots hold relative symlinks, as the hub client writes them
        blob = repo / "blobs" / f"blob-{f.name}"
        shutil.copy(f, blob)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, hub_cache: Path) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return hub_cache


def test_hub_id_loads_from_the_cache(offline: Path) -> None:
    model = explain.load("org/tiny-bert", device="cpu")
    assert model.family == "text-classifier"
    assert model.info.path.endswith(f"snapshots/{COMMIT}")
    res = explain.explain(model, ["a good film"], methods=["ig"])
    assert not res.failures


def test_uncached_id_is_one_line_saying_how_to_get_it(offline: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        explain.load("org/not-here", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "local Hugging Face cache" in msg and "huggingface-cli download org/not-here" in msg


def test_a_ref_to_a_missing_snapshot_is_not_cached(offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    repo = cache / "models--bert-base-uncased"
    (repo / "refs").mkdir(parents=True)
    (repo / "snapshots").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)  # a download that never finished
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(CheckpointError, match="huggingface-cli download bert-base-uncased"):
        explain.load("bert-base-uncased", device="cpu")


def test_hub_id_shape() -> None:
    assert looks_like_hub_id("bert-base-uncased") and looks_like_hub_id("org/name") and looks_like_hub_id("org/name@v1")
    assert not looks_like_hub_id("./models/x") and not looks_like_hub_id("a/b/c") and not looks_like_hub_id("my_gpt.py")


def test_cli_run_with_a_hub_id_offline(hub_cache: Path, tmp_path: Path) -> None:
    """`explain run org/tiny-bert` in a process whose sockets refuse to connect."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    base = [sys.executable, "-m", "explain.cli.main", "run"]
    proc = subprocess.run([*base, "org/tiny-bert", "--text", "a good film", "--out", str(tmp_path / "o"), "--no-report",
                           "--device", "cpu", "--threads", "1", "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "results.json").is_file()
    miss = subprocess.run([*base, "bert-base-uncased", "--text", "x", "--out", str(tmp_path / "p")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert miss.returncode == 2 and len(miss.stderr.strip().splitlines()) == 1
    assert "huggingface-cli download bert-base-uncased" in miss.stderr


def _snapshot(repo: Path, commit: str) -> Path:
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    return snap


def test_an_asked_revision_is_never_replaced_by_another(tmp_path: Path) -> None:
    """refs/main and refs/v1.0 cached, v2.0 and commit bbbb... not: asking for those finds nothing."""
    from explain.loading.hub_cache import cached_snapshot

    repo = tmp_path / "models--org--m"
    (repo / "refs").mkdir(parents=True)
    main, v1 = "a" * 40, "c" * 40
    (repo / "refs" / "main").write_text(main)
    (repo / "refs" / "v1.0").write_text(v1)
    snap_main = _snapshot(repo, main)
    snap_v1 = _snapshot(repo, v1)  # written last: the newest snapshot
    assert cached_snapshot("org/m", "v2.0", tmp_path) is None
    assert cached_snapshot("org/m", "b" * 40, tmp_path) is None
    assert cached_snapshot("org/m", "v1.0", tmp_path) == snap_v1
    assert cached_snapshot("org/m", main, tmp_path) == snap_main
    assert cached_snapshot("org/m", None, tmp_path) == snap_main  # no revision asked: refs/main
    (repo / "refs" / "main").unlink()
    assert cached_snapshot("org/m", None, tmp_path) in (snap_main, snap_v1)  # no ref at all: a cached snapshot
    assert cached_snapshot("org/m", "main", tmp_path) is None  # but an asked "main" must be that ref


def test_uncached_revision_is_one_line_with_the_revision_to_fetch(offline: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        explain.load("org/tiny-bert@v2.0", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "not in the local Hugging Face cache" in msg
    assert "huggingface-cli download org/tiny-bert --revision v2.0" in msg
    with pytest.raises(CheckpointError, match="--revision " + "b" * 40):
        explain.load("org/tiny-bert@" + "b" * 40, device="cpu")
    model = explain.load(f"org/tiny-bert@{COMMIT}", device="cpu")  # the cached commit, asked by hash
    assert model.info.path.endswith(f"snapshots/{COMMIT}")
