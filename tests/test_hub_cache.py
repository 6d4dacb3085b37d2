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
from explain.hub_cache import looks_like_hub_id

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
