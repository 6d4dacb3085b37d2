"""Turn the pieces a user has (code file, checkpoint, tokenizer) into an explain-torch folder.

`pack` copies the architecture's code file in, writes the weights as safetensors (the state
dict found inside a training checkpoint: nanoGPT's `model` and `model_args`, Lightning's
`state_dict`, ...; its keys fitted to the class, wrapper prefixes stripped), copies the
tokenizer, writes config.json, and checks the folder by loading it once (which runs the
load-time probe: explain/loading/probe.py). A TorchScript program or a whole pickled module is
copied as it is. A failed check removes what it wrote.
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
from .state_fit import fit_state
from .torch_folder import FORMAT, TORCHSCRIPT, build_architecture, container_key, prefix_key
from .weights_file import CodeFolder, read_weights

TORCHSCRIPT_FILE = "model.torchscript.pt"  # a TorchScript program, copied as given
PICKLED_FILE = "model.pickled.pt"  # a whole pickled module, copied as given (runs with --allow-pickle)


def pack(
    architecture: str | None,
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
    weights_key: str | None = None,
    head: str | None = None,
    answer_row: str | None = None,
) -> Path:
    """Write an explain-torch folder at `out` and check it loads and runs its probe; return the folder.

    `architecture` may be None for a TorchScript weights file (it holds its own code) and for a
    pickled whole module whose class is installed; `weights_key` names the checkpoint entry
    ("ema") or key prefix ("ema_model.") holding the model's weights. `head`
    (explain.adapters.heads.HEADS) and `answer_row` ("first" | "last" | "mean", text
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
    code, spec = _code(architecture)
    src = Path(weights).expanduser()
    if not src.is_file():
        raise CheckpointError(f"weights file not found: {src}")
    # The code file and the weights are the ones the user names here: pack runs them as they asked.
    found = read_weights(
        src, allow_pickle=allow_pickle, trust_remote_code=True,
        code=CodeFolder(code.parent if code else src.parent, code, trusted=True), key=container_key(weights_key),
    )
    config: dict[str, Any] = {"format": FORMAT, "format_version": 1, "family": family}
    state: dict[str, Any] | None = None
    if found.kind == "torchscript":
        code = None  # the program holds its own code
        config.update(architecture=TORCHSCRIPT, weights=TORCHSCRIPT_FILE)
    elif found.kind == "pickled module":
        if spec is not None:
            config["architecture"] = spec
        config["weights"] = PICKLED_FILE
    else:
        if spec is None:
            raise CheckpointError(f"{src.name} holds a state dict (weights without the model's code): give its class with --architecture FILE.py:Name")
        assert found.state is not None
        args = _arch_args(arch_args) if arch_args is not None else dict(found.model_args)
        model = build_architecture(code.parent if code else Path.cwd(), spec, args, trust_remote_code=True)
        state = fit_state(model, found.state, src.name, spec, prefix_key(weights_key))
        del model
        config.update(architecture=spec, arch_args=args, weights="model.safetensors")
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
        _write(dest, code, state, src if state is None else None, tokenizer, config)
        from .checkpoint import load

        try:
            load(dest, device="cpu", trust_remote_code=True, allow_pickle=allow_pickle)  # builds, loads the weights, runs the probe
        except OneRowError:
            load(dest, device="cpu", trust_remote_code=True, allow_pickle=allow_pickle, batch_size=1)
            warnings.warn(f"{config.get('architecture', 'the pickled module')} runs one row at a time only (a batch of two fails): "
                          "run it with --batch-size 1", ExplainWarning, stacklevel=2)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def run_flags(config: Mapping[str, Any]) -> str:
    """Return the flags `explain run` needs for a packed folder: its code, and a pickle if it holds one."""
    return "--trust-remote-code --allow-pickle" if config.get("weights") == PICKLED_FILE else "--trust-remote-code"


def _code(architecture: str | None) -> tuple[Path | None, str | None]:
    """Return (the architecture's code file or None, the spec as the folder's config names it)."""
    if architecture is None or architecture == TORCHSCRIPT:
        return None, None
    if ":" not in architecture:
        raise CheckpointError(f"architecture {architecture!r} must be FILE.py:Name or package.module:Name")
    where, name = architecture.rsplit(":", 1)
    if not where.endswith(".py"):
        return None, architecture
    code = Path(where).expanduser()
    if not code.is_file():
        raise CheckpointError(f"architecture file not found: {code}")
    return code, f"{code.name}:{name}"


def _write(dest: Path, code: Path | None, state: dict[str, Any] | None, whole: Path | None, tokenizer: str | Path | None, config: dict[str, Any]) -> None:
    """Write the folder: the code file, the weights (a state dict as safetensors, or the whole-module file copied), the tokenizer, config.json."""
    from safetensors.torch import save_file

    if code is not None:
        shutil.copy(code, dest / code.name)
    if state is not None:
        # Tied weights (nanoGPT's wte / lm_head) share storage, which safetensors refuses: one copy each.
        save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(dest / "model.safetensors"))
    elif whole is not None:
        shutil.copy(whole, dest / str(config["weights"]))
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
