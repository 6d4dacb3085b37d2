"""explain.load: every checkpoint format is recognised; broken ones are refused with a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import explain
from explain.errors import CheckpointError, DeviceError

from conftest import MODELS, save_bert


def test_hf_bert_folder_loads_as_text_classifier(tiny_bert: Path) -> None:
    model = explain.load(tiny_bert, device="cpu")
    assert model.family == "text-classifier"
    assert model.labels == ("negative", "neutral", "positive")
    assert model.info.layers == 2 and model.info.heads == 4
    assert model.info.content_hash.startswith("sha256:")
    assert model.info.parameters == sum(p.numel() for p in model.model.parameters())
    assert not model.model.training


def test_content_hash_changes_with_weights(tmp_path: Path) -> None:
    a = explain.load(save_bert(tmp_path / "a", seed=0), device="cpu").info.content_hash
    b = explain.load(save_bert(tmp_path / "b", seed=1), device="cpu").info.content_hash
    again = explain.load(tmp_path / "a", device="cpu").info.content_hash
    assert a != b and a == again


@pytest.mark.parametrize("kind", ["distilbert", "roberta"])
def test_other_encoder_families_load(tmp_path: Path, kind: str) -> None:
    from test_text_family import save_encoder

    folder = save_encoder(tmp_path / kind, kind)
    model = explain.load(folder, device="cpu")
    assert model.family == "text-classifier"
    assert len(model.labels) == 3


def test_bundled_models_load() -> None:
    found = {p.name: p for p in MODELS.iterdir() if (p / "config.json").exists()} if MODELS.exists() else {}
    expected = {"sentiment-bert": "text-classifier", "planted-gpt2": "causal-lm", "digits-cnn": "image-classifier"}
    missing = set(expected) - set(found)
    if missing:
        pytest.skip(f"bundled models missing: {sorted(missing)}")
    for name, family in expected.items():
        assert explain.load(found[name], device="cpu").family == family


def test_plain_cnn_loads_from_folder_and_from_safetensors_file() -> None:
    folder = MODELS / "digits-cnn"
    if not (folder / "model.safetensors").exists():
        pytest.skip("bundled digits-cnn missing")
    a = explain.load(folder, device="cpu")
    b = explain.load(folder / "model.safetensors", device="cpu")
    assert a.family == b.family == "image-classifier"
    assert a.info.content_hash == b.info.content_hash
    assert a.labels[-1] == "none"


def test_missing_path_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        explain.load(tmp_path / "nope")


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="no config.json"):
        explain.load(tmp_path)


def test_corrupt_weights_are_refused(tmp_path: Path, tiny_bert: Path) -> None:
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_bert, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot load"):
        explain.load(folder, device="cpu")


def test_pickle_only_weights_need_allow_pickle(tmp_path: Path, tiny_bert: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").unlink()
    torch.save({}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="allow-pickle"):
        explain.load(folder, device="cpu")


def test_missing_classifier_head_is_refused(tmp_path: Path, tiny_bert: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "headless"
    shutil.copytree(tiny_bert, folder)
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("classifier")}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="classifier"):
        explain.load(folder, device="cpu")
    assert explain.load(folder, device="cpu", allow_missing_weights=True).family == "text-classifier"


def test_unknown_architecture_is_refused(tmp_path: Path, tiny_bert: Path) -> None:
    folder = tmp_path / "odd"
    shutil.copytree(tiny_bert, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["BertForPreTraining"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="architectures"):
        explain.load(folder, device="cpu")


def test_plain_cnn_with_wrong_weights_names_the_mismatch(tmp_path: Path) -> None:
    src = MODELS / "digits-cnn"
    if not (src / "model.safetensors").exists():
        pytest.skip("bundled digits-cnn missing")
    folder = tmp_path / "cnn"
    shutil.copytree(src, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["labels"] = cfg["labels"][:5]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="5 labels"):
        explain.load(folder, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_a_device_error(tiny_bert: Path) -> None:
    with pytest.raises(DeviceError, match="CUDA is not available"):
        explain.load(tiny_bert, device="cuda")
