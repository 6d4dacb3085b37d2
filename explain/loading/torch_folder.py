"""Plain PyTorch checkpoint folders ("format": "explain-torch"): the user's class, its weights, a tokenizer.

config.json names the family, an `architecture` ("FILE.py:Name" inside the folder,
"package.module:Name", a built-in name such as "SmallCNN" / "torchvision.resnet18", or
"torchscript") called with `arch_args`, the `weights` (see weights_file.py: safetensors; a
.pt/.pth/.ckpt state dict or training checkpoint read without running pickled code, its keys
fitted to the class by state_fit.py; `weights_key` names the entry or key prefix to read; a
pickled whole module only with allow_pickle; a TorchScript file only with trust_remote_code), and for text
the `tokenizer` (and for a classifier optionally `answer_row`: "first" | "last" | "mean", the
token(s) its head reads), for images the `preprocessing`; optionally `head` (what the outputs
are: explain/adapters/heads.py) and, for text, `sequence_first`. Code from the folder runs only
with trust_remote_code.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from ..adapters.base import Adapter
from ..results.hashing import content_hash
from ..adapters.preprocessing import Preprocessing
from ..errors import CheckpointError
from .code_files import first_line, import_file, inside
from .own_model import FAMILIES, build_own_adapter
from .state_fit import fit_state
from .weights_file import CodeFolder, read_weights
from ..execution.runner import Runner

FORMAT = "explain-torch"
WEIGHT_NAMES = ("model.safetensors", "model.pt", "model.pth", "ckpt.pt", "pytorch_model.bin")
TORCHSCRIPT = "torchscript"  # the architecture of a folder whose weights file is a TorchScript program


def load_torch_folder(folder: Path, cfg: Mapping[str, Any], runner: Runner, *, trust_remote_code: bool, allow_pickle: bool) -> Adapter:
    """Return the adapter of an explain-torch folder (config already read)."""
    family = cfg.get("family")
    if family not in FAMILIES:
        raise CheckpointError(f"{folder / 'config.json'}: 'family' is {family!r}; use one of {', '.join(FAMILIES)}")
    weights = weights_path(folder, cfg)
    module = build_module(folder, cfg, weights, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    prep = None
    tokenizer: Any = None
    if family == "image-classifier":
        if "preprocessing" not in cfg:
            raise CheckpointError(f"{folder / 'config.json'} lacks 'preprocessing' (size, channels, mean, std) for an image classifier")
        prep = Preprocessing.from_config(cfg["preprocessing"])
    else:
        if not cfg.get("tokenizer"):
            raise CheckpointError(f"{folder / 'config.json'} lacks 'tokenizer' (a tokenizers JSON file or a tokenizer folder)")
        tokenizer = inside(folder, str(cfg["tokenizer"]), "tokenizer")
    files = [weights, folder / "config.json"]
    return build_own_adapter(
        module,
        str(family),
        runner,
        tokenizer=tokenizer,
        preprocessing=prep,
        labels=cfg.get("labels"),
        embeddings=cfg.get("embeddings"),
        attention_probs=cfg.get("attention_probs"),
        special_tokens=cfg.get("special_tokens"),
        max_length=cfg.get("max_length"),
        path=str(folder.resolve()),
        content_hash=content_hash(files),
        architecture=str(cfg.get("architecture")),
        answer_row=cfg.get("answer_row"),
        head=cfg.get("head"),
        sequence_first=cfg.get("sequence_first"),
    )


def weights_path(folder: Path, cfg: Mapping[str, Any]) -> Path:
    """Return the weights file a config names, or the first usual name present."""
    if cfg.get("weights"):
        p = inside(folder, str(cfg["weights"]), "weights")
        if not p.is_file():
            raise CheckpointError(f"weights file not found: {p}")
        return p
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} has no weights file: name it in config.json 'weights' ({', '.join(WEIGHT_NAMES)})")


def build_module(folder: Path, cfg: Mapping[str, Any], weights: Path, *, trust_remote_code: bool, allow_pickle: bool) -> nn.Module:
    """Return the module of a folder: its architecture built with arch_args and the weights loaded,
    or the whole module a pickled or TorchScript weights file holds."""
    arch = cfg.get("architecture")
    where = str(arch).rsplit(":", 1)[0] if arch else ""
    main = inside(folder, where, "architecture") if where.endswith(".py") else None  # stands for a pickle's __main__
    key = cfg.get("weights_key")
    found = read_weights(
        weights, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
        code=CodeFolder(folder, main, trusted=trust_remote_code), key=container_key(key),
    )
    if found.module is not None:
        return found.module
    assert found.state is not None  # a file that holds no module holds a state dict
    if arch == TORCHSCRIPT:
        raise CheckpointError(f"{folder / 'config.json'} names the architecture 'torchscript' but {weights.name} holds a state dict, not a TorchScript program")
    if not arch:
        raise CheckpointError(f"{folder / 'config.json'} lacks 'architecture' (e.g. \"model.py:GPT\")")
    args = dict(cfg.get("arch_args") or found.model_args)
    model = build_architecture(folder, str(arch), args, trust_remote_code=trust_remote_code, config_class=cfg.get("arch_config"))
    model.load_state_dict(fit_state(model, found.state, weights.name, str(arch), prefix_key(key)), strict=True)
    return model


def container_key(key: Any) -> str | None:
    """Return the checkpoint entry a weights_key names ("ema"), or None for a key prefix ("ema_model.") or none."""
    return None if key is None or str(key).endswith(".") else str(key)


def prefix_key(key: Any) -> str | None:
    """Return the key prefix a weights_key names ("ema_model."), or None."""
    return str(key) if key is not None and str(key).endswith(".") else None


def build_architecture(folder: Path, spec: str, args: Mapping[str, Any], *, trust_remote_code: bool, config_class: str | None = None) -> nn.Module:
    """Return the untrained module `spec` names, called with `args` (or with a config object built from them)."""
    if ":" not in spec:
        from .cnn import build_architecture as builtin

        try:
            return builtin(spec, dict(args))
        except (KeyError, ImportError, TypeError) as e:
            raise CheckpointError(f"cannot build architecture {spec!r}: {first_line(e)}") from e
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        if not trust_remote_code:
            raise CheckpointError(
                f"the checkpoint's architecture {spec!r} is Python code in {folder}, which runs when loaded: "
                "pass --trust-remote-code (trust_remote_code=True) if you trust it"
            )
        namespace = import_file(inside(folder, where, "architecture"))
    else:
        try:
            namespace = importlib.import_module(where)
        except ImportError as e:
            raise CheckpointError(f"cannot import {where!r} for architecture {spec!r}: {first_line(e)}") from e
    factory = _attribute(namespace, name, spec)
    return _call(factory, namespace, args, spec, config_class)


def _call(factory: Callable[..., Any], namespace: Any, args: Mapping[str, Any], spec: str, config_class: str | None) -> nn.Module:
    """Call the factory with **args, or with one config object (nanoGPT's GPT(GPTConfig(**args)))."""
    config = _attribute(namespace, config_class, spec) if config_class else None
    if config is None and not _takes_kwargs(factory, args):
        config = _config_class(namespace, factory)
    try:
        out = factory(config(**args)) if config is not None else factory(**args)
    except Exception as e:  # the user's constructor may raise anything on bad arguments
        raise CheckpointError(f"cannot build architecture {spec!r} with arch_args {dict(args)}: {first_line(e)}") from e
    if not isinstance(out, nn.Module):
        raise CheckpointError(f"architecture {spec!r} returned a {type(out).__name__}, not a torch.nn.Module")
    return out


def _takes_kwargs(factory: Callable[..., Any], args: Mapping[str, Any]) -> bool:
    """Return True when factory(**args) fits its signature: every key a parameter (or **kwargs taken) and
    every parameter without a default given. False for nanoGPT's GPT(config) with args {} or its config's keys."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if any(n not in args for n in required):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return all(k in params for k in args)


def _config_class(namespace: Any, factory: Callable[..., Any]) -> Any:
    """Return the config class beside a factory that takes one config object: NameConfig, else the one *Config."""
    name = getattr(factory, "__name__", "")
    direct = getattr(namespace, f"{name}Config", None)
    if isinstance(direct, type):
        return direct
    found = [v for k, v in vars(namespace).items() if k.endswith("Config") and isinstance(v, type)]
    return found[0] if len(found) == 1 else None


def _attribute(namespace: Any, name: str, spec: str) -> Any:
    obj = namespace
    for part in name.split("."):  # "EfficientNet.from_name"
        if not hasattr(obj, part):
            raise CheckpointError(f"architecture {spec!r}: {getattr(namespace, '__name__', 'the module')} has no {name!r}")
        obj = getattr(obj, part)
    return obj
