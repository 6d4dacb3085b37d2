"""Plain PyTorch checkpoint folders ("format": "explain-torch"): the user's class, its weights, a tokenizer.

config.json names the family, an `architecture` ("FILE.py:Name" inside the folder,
"package.module:Name", or a built-in name such as "SmallCNN" / "torchvision.resnet18") called
with `arch_args`, the `weights` (safetensors; a .pt/.pth state dict read with weights_only, a
nanoGPT checkpoint dict included; a pickled whole module only with allow_pickle), and for text
the `tokenizer` (and for a classifier optionally `answer_row`: "first" | "last" | "mean", the
token(s) its head reads), for images the `preprocessing`; optionally `head` (what the outputs
are: explain/adapters/heads.py) and, for text, `sequence_first`. Code from the folder runs only
with trust_remote_code.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pickle
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..adapters.base import Adapter
from ..results.hashing import content_hash
from ..adapters.preprocessing import Preprocessing
from ..errors import CheckpointError
from .own_model import FAMILIES, build_own_adapter
from ..execution.runner import Runner

FORMAT = "explain-torch"
WEIGHT_NAMES = ("model.safetensors", "model.pt", "model.pth", "ckpt.pt", "pytorch_model.bin")
_PREFIXES = ("_orig_mod.", "module.")  # torch.compile, DistributedDataParallel


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
        tokenizer = _inside(folder, str(cfg["tokenizer"]), "tokenizer")
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
        p = _inside(folder, str(cfg["weights"]), "weights")
        if not p.is_file():
            raise CheckpointError(f"weights file not found: {p}")
        return p
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} has no weights file: name it in config.json 'weights' ({', '.join(WEIGHT_NAMES)})")


def read_weights(path: Path, *, allow_pickle: bool) -> tuple[dict[str, torch.Tensor] | nn.Module, dict[str, Any]]:
    """Return (state dict or pickled module, model_args found beside a nanoGPT-style state dict)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), {}
        except Exception as e:  # safetensors raises its own error type for a corrupt file
            raise CheckpointError(f"cannot read weights {path}: {_first_line(e)}") from e
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not allow_pickle:
            raise CheckpointError(
                f"{path.name} holds pickled Python objects (a whole module?), which can run code when loaded; "
                "save a state dict instead (torch.save(model.state_dict(), ...)) or pass --allow-pickle if you trust the file"
            ) from e
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"cannot read weights {path}: {_first_line(e)}") from e
    if isinstance(obj, nn.Module):
        return obj, {}
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    args: dict[str, Any] = {}
    for key in ("model", "state_dict", "model_state_dict"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            margs = obj.get("model_args")
            args = dict(margs) if isinstance(margs, Mapping) else {}
            obj = inner
            break
    state = _strip({str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)})
    if not state:
        raise CheckpointError(f"{path.name} holds no tensors: expected a state dict or a {{'model': state_dict}} checkpoint")
    return state, args


def build_module(folder: Path, cfg: Mapping[str, Any], weights: Path, *, trust_remote_code: bool, allow_pickle: bool) -> nn.Module:
    """Return the module of a folder: its architecture built with arch_args and the weights loaded."""
    found, ckpt_args = read_weights(weights, allow_pickle=allow_pickle)
    if isinstance(found, nn.Module):
        return found
    arch = cfg.get("architecture")
    if not arch:
        raise CheckpointError(f"{folder / 'config.json'} lacks 'architecture' (e.g. \"model.py:GPT\")")
    args = dict(cfg.get("arch_args") or ckpt_args)
    model = build_architecture(folder, str(arch), args, trust_remote_code=trust_remote_code, config_class=cfg.get("arch_config"))
    load_state(model, found, weights.name, str(arch))
    return model


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, arch: str) -> None:
    """Load `state` strictly; raise CheckpointError naming the first key that does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    bad = len(missing) + len(extra) + len(shapes)
    if bad:
        more = f" ({bad} keys differ)" if bad > 1 else ""
        if shapes:
            k = shapes[0]
            why = f"{k!r} is {tuple(state[k].shape)} in the weights but {tuple(own[k].shape)} in the model"
        elif missing:
            why = f"{missing[0]!r} is missing from the weights"
        else:
            why = f"{extra[0]!r} is in the weights but not in the model"
        raise CheckpointError(f"the weights {source} do not fit {arch}: first mismatched key {why}{more}")
    model.load_state_dict(state, strict=True)


def build_architecture(folder: Path, spec: str, args: Mapping[str, Any], *, trust_remote_code: bool, config_class: str | None = None) -> nn.Module:
    """Return the untrained module `spec` names, called with `args` (or with a config object built from them)."""
    if ":" not in spec:
        from .cnn import build_architecture as builtin

        try:
            return builtin(spec, dict(args))
        except (KeyError, ImportError, TypeError) as e:
            raise CheckpointError(f"cannot build architecture {spec!r}: {_first_line(e)}") from e
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        if not trust_remote_code:
            raise CheckpointError(
                f"the checkpoint's architecture {spec!r} is Python code in {folder}, which runs when loaded: "
                "pass --trust-remote-code (trust_remote_code=True) if you trust it"
            )
        namespace = _import_file(_inside(folder, where, "architecture"))
    else:
        try:
            namespace = importlib.import_module(where)
        except ImportError as e:
            raise CheckpointError(f"cannot import {where!r} for architecture {spec!r}: {_first_line(e)}") from e
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
        raise CheckpointError(f"cannot build architecture {spec!r} with arch_args {dict(args)}: {_first_line(e)}") from e
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


def _import_file(path: Path) -> Any:
    """Import a Python file from a checkpoint folder under a name of its own (its folder on sys.path meanwhile)."""
    if not path.is_file():
        raise CheckpointError(f"architecture file not found: {path}")
    import hashlib

    digest = hashlib.sha256(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:16]
    key = f"explain_own_{digest}_{path.stem}"
    if key in sys.modules:  # the same file, unchanged: one class object, so modules of it pickle
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise CheckpointError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod  # dataclasses and pickling look a class's module up by name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # the user's file may raise anything on import
        sys.modules.pop(key, None)
        raise CheckpointError(f"importing {path.name} failed: {_first_line(e)}") from e
    finally:
        sys.path.remove(str(path.parent))
    return mod


def _inside(folder: Path, name: str, what: str) -> Path:
    """Return folder/name, refusing a path that leaves the folder."""
    p = (folder / name).resolve()
    if folder.resolve() not in (p, *p.parents):
        raise CheckpointError(f"{what} {name!r} points outside the checkpoint folder {folder}")
    return p


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a prefix every key shares ("_orig_mod." from torch.compile, "module." from DDP)."""
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).strip().splitlines()[:1]) or type(e).__name__
    return text if len(text) < 300 else text[:300] + "..."
