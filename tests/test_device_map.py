"""--device-map: a Hugging Face model placed by accelerate explains exactly as a plainly loaded one.

On a CPU machine "auto" puts every layer on the CPU; the GPU split itself is checked by hand
(see the README). What is tested here: the loading path, where inputs go, every gradient and
perturbation method, the memory caps handed to accelerate, and the CLI flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import explain
from conftest import MODELS, run_cli
from explain.errors import CheckpointError
from explain.loading.checkpoint import _placement, first_device

pytest.importorskip("accelerate")

TEXTS = ["the movie was unwatchable", "a great film with good acting"]
SETTINGS = {"ig": {"n_steps": 16, "adaptive": False}, "shap": {"max_evals": 60}, "lime": {"num_samples": 120}}


@pytest.mark.parametrize("device_map", ["auto", "sequential"])
def test_device_map_explains_as_a_plain_load(tiny_bert: Path, device_map: str) -> None:
    plain = explain.load(tiny_bert, device="cpu")
    placed = explain.load(tiny_bert, device_map=device_map)
    assert placed.info == plain.info and placed.device == first_device(placed.model) == torch.device("cpu")
    methods = ["ig", "attention", "shap", "lime", "ablation"]
    a = explain.explain(plain, TEXTS, methods=methods, seed=0, **SETTINGS)
    b = explain.explain(placed, TEXTS, methods=methods, seed=0, **SETTINGS)
    assert not a.failures and not b.failures
    assert [e.replace(seconds=0.0) for e in a] == [e.replace(seconds=0.0) for e in b]


def test_memory_cap_reaches_accelerate() -> None:
    placement = _placement("auto", "1GB")
    assert placement is not None and placement["device_map"] == "auto"
    caps = placement["max_memory"]
    assert all(caps[i] == 10**9 for i in range(torch.cuda.device_count()))
    if not torch.cuda.is_available():
        assert caps == {"cpu": 10**9}
    with pytest.raises(CheckpointError, match="unknown device map"):
        _placement("everywhere", None)


def test_a_plain_cnn_refuses_a_device_map() -> None:
    cnn = MODELS / "digits-cnn"
    if not (cnn / "config.json").exists():
        pytest.skip("bundled digits-cnn is missing")
    with pytest.raises(CheckpointError, match="plain PyTorch one"):
        explain.load(cnn, device_map="auto")


def test_cli_device_map(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("run", str(tiny_bert), "--text", TEXTS[0], "--methods", "ig,ablation", "--device-map", "auto",
                   "--max-memory", "2GB", "--out", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert explain.open_results(out).by_method("ig")
