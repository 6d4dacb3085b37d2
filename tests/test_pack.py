"""`explain pack`: a nanoGPT-format ckpt.pt + model code + tokenizer -> explain-torch folder -> `explain run`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch

import explain
from explain.errors import CheckpointError

from conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "examples" / "own_models"))
import planted  # noqa: E402

from explain.cli import pack as pack_cli  # noqa: E402


@pytest.fixture(scope="module")
def nanogpt_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ckpt.pt as nanoGPT's train.py writes it: compiled-model keys, model_args, optimizer state, config."""
    model, tok, args = planted.train_gpt(steps=150)
    where = tmp_path_factory.mktemp("nanogpt")
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}  # torch.compile's prefix
    opt = torch.optim.AdamW(model.parameters())
    torch.save({"model": state, "optimizer": opt.state_dict(), "model_args": args, "iter_num": 150,
                "best_val_loss": 1.25, "config": {"batch_size": 32, "dataset": "planted"}}, where / "ckpt.pt")
    tok.save(str(where / "tokenizer.json"))
    (where / "model.py").write_bytes((ROOT / "examples" / "own_models" / "gpt.py").read_bytes())
    return where


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    pack_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["pack", *argv])


def test_pack_then_run(nanogpt_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "my-gpt"
    args = _parse("--architecture", str(nanogpt_ckpt / "model.py") + ":GPT", "--weights", str(nanogpt_ckpt / "ckpt.pt"),
                  "--tokenizer", str(nanogpt_ckpt / "tokenizer.json"), "--family", "causal-lm", "--out", str(out), "--quiet")
    assert pack_cli.run(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architecture"] == "model.py:GPT" and cfg["arch_args"]["n_layer"] == 2  # model_args from the checkpoint
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.py", "model.safetensors", "tokenizer.json"]
    model = explain.load(out, device="cpu", trust_remote_code=True)
    src = torch.load(nanogpt_ckpt / "ckpt.pt", weights_only=True)["model"]
    for k, v in model.model.inner.state_dict().items():  # the very weights, prefixes stripped
        torch.testing.assert_close(v, src[f"_orig_mod.{k}"])
    proc = run_cli("run", str(out), "--prompt", "the big cat sat", "--methods", "ig,shap", "--max-new-tokens", "1",
                   "--trust-remote-code", "--threads", "1", "--device", "cpu", "--out", str(tmp_path / "run"), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = explain.open_results(tmp_path / "run" / "results.json")
    assert {e.method for e in results} == {"ig", "shap"} and not results.failures
    # Never over an existing folder without --force.
    with pytest.raises(CheckpointError, match="exists and is not empty.*--force"):
        pack_cli.run(args)
    args.force = True
    assert pack_cli.run(args) == 0


def test_pack_that_does_not_load_leaves_nothing(nanogpt_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    args = _parse("--architecture", str(nanogpt_ckpt / "model.py") + ":GPT", "--weights", str(nanogpt_ckpt / "ckpt.pt"),
                  "--arch-args", json.dumps({"vocab_size": 400, "n_layer": 3, "n_head": 2, "n_embd": 48, "block_size": 48}),
                  "--tokenizer", str(nanogpt_ckpt / "tokenizer.json"), "--family", "causal-lm", "--out", str(out))
    with pytest.raises(CheckpointError, match="first mismatched key"):
        pack_cli.run(args)
    assert not out.exists()


def test_explain_pack_command(nanogpt_ckpt: Path, tmp_path: Path) -> None:
    """The two commands a nanoGPT user runs: `explain pack`, then `explain run` on its folder."""
    assert "pack" in run_cli("--help").stdout.split()  # listed among the commands
    out = tmp_path / "my-gpt"
    proc = run_cli("pack", "--architecture", str(nanogpt_ckpt / "model.py") + ":GPT", "--weights", str(nanogpt_ckpt / "ckpt.pt"),
                   "--tokenizer", str(nanogpt_ckpt / "tokenizer.json"), "--family", "causal-lm", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("run", str(out), "--prompt", "the big cat sat", "--methods", "ig", "--max-new-tokens", "1",
                   "--trust-remote-code", "--threads", "1", "--device", "cpu", "--out", str(tmp_path / "run"), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    again = run_cli("pack", "--architecture", str(nanogpt_ckpt / "model.py") + ":GPT", "--weights", str(nanogpt_ckpt / "ckpt.pt"),
                    "--tokenizer", str(nanogpt_ckpt / "tokenizer.json"), "--family", "causal-lm", "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_pack_labels_from_a_file_keep_commas(tmp_path: Path) -> None:
    from explain.cli.pack import _labels

    names = tmp_path / "labels.txt"
    names.write_text("tench, Tinca tinca\n\ngoldfish, Carassius auratus\n", encoding="utf-8")
    assert _labels(str(names)) == ["tench, Tinca tinca", "goldfish, Carassius auratus"]
    assert _labels("cat, dog") == ["cat", "dog"]


def test_pack_without_architecture_needs_one_for_a_state_dict(nanogpt_ckpt: Path, tmp_path: Path) -> None:
    """--architecture may be left out only for a file that holds its own code (TorchScript)."""
    args = _parse("--weights", str(nanogpt_ckpt / "ckpt.pt"), "--tokenizer", str(nanogpt_ckpt / "tokenizer.json"),
                  "--family", "causal-lm", "--out", str(tmp_path / "x"))
    with pytest.raises(CheckpointError, match=r"ckpt\.pt holds a state dict .*--architecture FILE\.py:Name"):
        pack_cli.run(args)
    assert not (tmp_path / "x").exists()
