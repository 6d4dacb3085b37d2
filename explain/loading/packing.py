"""Turn the pieces a user has (code file, checkpoint, tokenizer) into an explain-torch folder.

`pack` copies the architecture's code file in, writes the weights as safetensors (a nanoGPT
checkpoint dict's `model` and `model_args` included, `_orig_mod.` prefixes stripped), copies
the tokenizer, writes config.json, and checks the folder by loading it once (which runs the
load-time probe: explain/loading/probe.py). A failed check removes what it wrote.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..adapters.answer_row import check_rule
from ..adapters.heads import check_head
from ..errors import CheckpointError, ExplainWarning
from .own_model import FAMILIES
from .probe import OneRowError
from .torch_folder import FORMAT, read_weights


def pack(
    architecture: str,
    weights: str | Path,
    family: str,
    out: str | Path,
    *,
    arch_args: Mapping[str, Any] | str | Path | None = None,
    tokenizer: str | Path | None = None,
    labels: Sequence[str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    embeddings: str | None = None,
    attention_probs: str | None = None,
    force: bool = False,
    allow_pickle: bool = False,
    head: str | None = None,
    answer_row: str | None = None,
) -> Path:
    """Write an explain-torch folder at `out` and check it loads and runs its probe; return the folder.

    `head` (explain.adapters.heads.HEADS) and `answer_row` ("first" | "last" | "mean", text
    classifiers) are written to config.json as stated. A model that runs one row at a time only
    is packed (checked with a batch size of 1) with an ExplainWarning saying to run it with
    --batch-size 1.
    """
    if family not in FAMILIES:
        raise CheckpointError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")
    head = check_head(head)
    answer_row = check_rule(answer_row)
    if answer_row is not None and family != "text-classifier":
        raise CheckpointError(f"--answer-row is for text classifiers (the token(s) the head reads), not a {family}")
    dest = Path(out).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())) and not force:
        raise CheckpointError(f"{dest} exists and is not empty: choose another --out or pass --force to overwrite")
    if ":" not in architecture:
        raise CheckpointError(f"architecture {architecture!r} must be FILE.py:Name or package.module:Name")
    where, name = architecture.rsplit(":", 1)
    code = Path(where).expanduser() if where.endswith(".py") else None
    if code is not None and not code.is_file():
        raise CheckpointError(f"architecture file not found: {code}")
    src = Path(weights).expanduser()
    if not src.is_file():
        raise CheckpointError(f"weights file not found: {src}")
    state, ckpt_args = read_weights(src, allow_pickle=allow_pickle)
    if not isinstance(state, dict):
        raise CheckpointError(f"{src.name} holds a whole pickled module: pack needs a state dict (torch.save(model.state_dict(), ...))")
    args = _arch_args(arch_args) if arch_args is not None else dict(ckpt_args)
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": 1,
        "family": family,
        "architecture": f"{code.name}:{name}" if code is not None else architecture,
        "arch_args": args,
        "weights": "model.safetensors",
    }
    if family == "image-classifier":
        if not preprocessing:
            raise CheckpointError("an image classifier needs --preprocessing (size, channels, mean, std)")
        config["preprocessing"] = dict(preprocessing)
    elif tokenizer is None:
        raise CheckpointError(f"a {family} needs --tokenizer (a tokenizers JSON file or a tokenizer folder)")
    if labels:
        config["labels"] = list(labels)
    if embeddings:
        config["embeddings"] = embeddings
    if attention_probs:
        config["attention_probs"] = attention_probs
    if head:
        config["head"] = head
    if answer_row:
        config["answer_row"] = answer_row
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _write(dest, code, state, tokenizer, config)
        from .checkpoint import load

        try:
            load(dest, device="cpu", trust_remote_code=True)  # builds, loads the weights, runs the probe
        except OneRowError:
            load(dest, device="cpu", trust_remote_code=True, batch_size=1)
            warnings.warn(f"{config['architecture']} runs one row at a time only (a batch of two fails): run it with --batch-size 1",
                          ExplainWarning, stacklevel=2)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def _write(dest: Path, code: Path | None, state: dict[str, Any], tokenizer: str | Path | None, config: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    if code is not None:
        shutil.copy(code, dest / code.name)
    # Tied weights (nanoGPT's wte / lm_head) share storage, which safetensors refuses: one copy each.
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(dest / "model.safetensors"))
    if tokenizer is not None:
        tok = Path(tokenizer).expanduser()
        if tok.is_dir():
            shutil.copytree(tok, dest / "tokenizer", dirs_exist_ok=True)
            config["tokenizer"] = "tokenizer"
        elif tok.is_file():
            shutil.copy(tok, dest / "tokenizer.json")
            config["tokenizer"] = "tokenizer.json"
        else:
            raise CheckpointError(f"tokenizer not found: {tok}")
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _arch_args(value: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """Return arch_args from a dict, a JSON file or a JSON text."""
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value)
    p = Path(text).expanduser()
    try:
        doc = json.loads(p.read_text(encoding="utf-8") if p.is_file() else text)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"--arch-args {text!r} is neither a JSON file nor JSON text: {e}") from e
    if not isinstance(doc, dict):
        raise CheckpointError("--arch-args must hold a JSON object (constructor keyword arguments)")
    return doc
