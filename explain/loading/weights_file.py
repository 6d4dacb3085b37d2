"""A weights file as people save them: a state dict, a training checkpoint, a whole module, TorchScript.

- `.safetensors`: tensors only.
- a `torch.save` file is read by torch's restricted unpickler (`weights_only=True`). A training
  checkpoint that also holds Python objects (PyTorch Lightning's `hyper_parameters` with an
  `argparse.Namespace`, a callback's state) is read by that same unpickler with each class it
  does not know replaced by an inert stand-in: no pickled code runs, and the tensors come out
  as saved. The state dict is found at the top or under a usual key (`state_dict`,
  `model_state_dict`, `model`, `net`, `module`, `ema`, ...), or the key the config names.
- a whole pickled module (`torch.save(model)`) runs pickled code, so only with allow_pickle;
  its class is taken from the code folder when it is not installed (`model.Net` from
  model.py, `__main__.Net` from the architecture file), and such folder code only with
  trust_remote_code.
- a TorchScript archive (`torch.jit.save`, `script`, `trace`) is a program: `torch.jit.load`
  only with trust_remote_code.
"""

from __future__ import annotations

import pickle
import types
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ExplainWarning
from .code_files import first_line, import_file, inside

# Where training scripts keep the state dict inside a checkpoint dict, most usual first
# (Lightning: state_dict; the PyTorch tutorials: model_state_dict; nanoGPT: model; DeepSpeed: module).
CONTAINERS = ("state_dict", "model_state_dict", "model", "net", "module", "ema", "model_ema", "state_dict_ema")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin", ".pkl", ".jit")


@dataclass(frozen=True)
class CodeFolder:
    """Where a pickled module's classes may come from besides installed packages."""

    root: Path  # the checkpoint folder (or, for pack, the folder of the user's code file)
    main: Path | None = None  # the architecture file: it stands for `__main__` (a script's own classes)
    trusted: bool = False  # whether its code may run (trust_remote_code)


@dataclass
class Weights:
    """What a weights file holds: a state dict (with what was saved beside it) or a whole module."""

    path: Path
    kind: str  # "state dict", "pickled module" or "torchscript"
    state: dict[str, torch.Tensor] | None = None
    module: nn.Module | None = None
    container: str | None = None  # the key the state dict was under, None for a bare state dict
    model_args: dict[str, Any] = field(default_factory=dict)  # nanoGPT's constructor arguments


def read_weights(path: Path, *, allow_pickle: bool, trust_remote_code: bool = False, code: CodeFolder | None = None, key: str | None = None) -> Weights:
    """Return what the weights file at `path` holds; `key` names the checkpoint entry holding the state dict."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return Weights(path, "state dict", state=load_file(str(path)))
        except Exception as e:  # safetensors raises its own error type for a corrupt file
            raise CheckpointError(f"cannot read weights {path}: {first_line(e)}") from e
    if is_torchscript(path):
        return Weights(path, "torchscript", module=_torchscript(path, trust_remote_code))
    obj, stand_ins = _restricted(path)
    if obj is None or _pickled_module(obj) is not None:
        if not allow_pickle:
            named = f" ({', '.join(stand_ins[:3])})" if stand_ins else ""
            what = f"a whole pickled module ({_class_name(obj)})" if obj is not None else f"pickled Python objects{named}"
            raise CheckpointError(
                f"{path.name} holds {what}, which runs code when loaded; save a state dict instead "
                "(torch.save(model.state_dict(), ...)) or pass --allow-pickle if you trust the file"
            )
        obj = _unpickle(path, code)
        module = _pickled_module(obj)
        if isinstance(module, nn.Module):
            return Weights(path, "pickled module", module=_unwrapped(module))
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    state, container = find_state(obj, path.name, key)
    margs = obj.get("model_args")
    return Weights(path, "state dict", state=state, container=container, model_args=dict(margs) if isinstance(margs, Mapping) else {})


def find_state(obj: Mapping[Any, Any], name: str, key: str | None = None) -> tuple[dict[str, torch.Tensor], str | None]:
    """Return (the state dict inside a checkpoint dict, the key it was under); warn when another key holds one too."""
    found = {k: s for k in CONTAINERS if (s := _tensors(obj.get(k))) is not None}
    if key is not None:
        state = _tensors(obj.get(key))
        if state is None:
            held = ", ".join(repr(k) for k in found) or "none"
            raise CheckpointError(f"{name} has no state dict under {key!r} (the keys holding one: {held})")
        return state, key
    if found:
        first = next(iter(found))
        others = [k for k in found if k != first]
        if others:
            warnings.warn(f"{name}: read the state dict under {first!r}; it also holds one under {', '.join(map(repr, others))} "
                          "(choose with weights_key / --weights-key)", ExplainWarning, stacklevel=4)
        return found[first], first
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(
            f"{name} holds no tensors: expected a state dict or a checkpoint dict with one under {', '.join(map(repr, CONTAINERS[:5]))}, ..."
        )
    return state, None


def is_torchscript(path: Path) -> bool:
    """Return True for a TorchScript archive (torch.jit.save): a zip holding code and constants.pkl."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except OSError:
        return False


def _torchscript(path: Path, trust_remote_code: bool) -> nn.Module:
    if not trust_remote_code:
        raise CheckpointError(
            f"{path.name} is a TorchScript program (the model's code compiled into the file), which runs when loaded: "
            "pass --trust-remote-code (trust_remote_code=True) if you trust it"
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError and others for a damaged archive
        raise CheckpointError(f"cannot read the TorchScript file {path}: {first_line(e)}") from e
    return module.eval()


def _tensors(value: Any) -> dict[str, torch.Tensor] | None:
    """Return `value` as a state dict when it is a non-empty mapping of tensors, else None."""
    if isinstance(value, Mapping) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    return None


# ---- torch.save files without running pickled code ------------------------------------------
class StandIn:
    """An inert object in place of a class the checkpoint names: it keeps what it was given, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _stand_in(full_name: str) -> tuple[type, str]:
    module, _, name = full_name.rpartition(".")
    return type(name, (StandIn,), {"__module__": module, "__qualname__": name}), full_name


def _restricted(path: Path) -> tuple[Any, list[str]]:
    """Return (the object torch's restricted unpickler reads, the classes it stood in for); (None, names) if it cannot."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True), []
    except pickle.UnpicklingError:
        pass
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"cannot read weights {path}: {first_line(e)}") from e
    serialization: Any = torch.serialization
    try:  # torch >= 2.5: the classes the pickle names, read without unpickling
        names = sorted(serialization.get_unsafe_globals_in_checkpoint(str(path)))
        with serialization.safe_globals([_stand_in(n) for n in names]):
            return torch.load(str(path), map_location="cpu", weights_only=True), names
    except Exception:  # an old torch, the legacy format, or objects the restricted unpickler cannot build
        return None, names if "names" in locals() else []


def _pickled_module(obj: Any) -> Any:
    """Return the whole module a checkpoint is or holds under a usual key (a stand-in when read restricted), or None."""
    if isinstance(obj, (nn.Module, StandIn)):
        return obj
    if isinstance(obj, Mapping) and not any(_tensors(obj.get(k)) is not None for k in CONTAINERS):
        for k in CONTAINERS:
            if isinstance(obj.get(k), (nn.Module, StandIn)):
                return obj[k]
    return None


def _unwrapped(module: nn.Module) -> nn.Module:
    """Return the model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = module.module if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return module
        module = inner


def _class_name(obj: Any) -> str:
    m = _pickled_module(obj)
    return f"{type(m).__module__}.{type(m).__qualname__}"


def _unpickle(path: Path, code: CodeFolder | None) -> Any:
    """Return torch.load's full unpickling of `path`, classes missing from the installed packages taken from `code`."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found = _code_file(code, module)
            if found is not None and code is not None:
                if not code.trusted:
                    raise CheckpointError(
                        f"{path.name} is a pickled module whose class {module}.{name} is code in {found.name}, which runs when loaded: "
                        "pass --trust-remote-code (trust_remote_code=True) if you trust it"
                    )
                namespace = import_file(found)
                if not hasattr(namespace, name):
                    raise CheckpointError(f"{path.name} is a pickled {module}.{name}, but {found.name} has no {name!r}")
                return getattr(namespace, name)
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError) as e:
                where = f"nor a file in {code.root}" if code is not None else "nor given as the architecture"
                raise CheckpointError(
                    f"{path.name} is a pickled module of class {module}.{name}, which is neither installed {where}: "
                    f"give the file that defines it as the architecture ({first_line(e)})"
                ) from e

    pickle_module = types.ModuleType("explain_unpickle")
    setattr(pickle_module, "Unpickler", Unpickler)
    setattr(pickle_module, "load", pickle.load)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's FutureWarning about weights_only: the user allowed pickles
            return torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=pickle_module)
    except CheckpointError:
        raise
    except Exception as e:  # unpickling runs arbitrary constructors: anything may fail
        raise CheckpointError(f"cannot unpickle {path.name}: {first_line(e)}") from e


def _code_file(code: CodeFolder | None, module: str) -> Path | None:
    """Return the folder's file that stands for `module` (`__main__`: the architecture file), or None."""
    if code is None:
        return None
    if module == "__main__":
        return code.main
    parts = module.split(".")
    if any(not p.isidentifier() for p in parts):
        return None
    candidate = inside(code.root, "/".join(parts) + ".py", "pickled class module")
    if candidate.is_file():
        return candidate
    if code.main is not None and parts[-1] == code.main.stem:  # `models.net.Net`, given as net.py
        return code.main
    return None


# ---- a weights file given where a checkpoint folder is expected --------------------------------
def bare_file_message(path: Path) -> str:
    """Return the one-line error for a weights file given alone: what it holds and the `explain pack` command that makes it a folder."""
    flags = "--trust-remote-code"
    if is_torchscript(path):
        what, arch = "a TorchScript program (no tokenizer, labels or image preprocessing)", ""
    else:
        arch = "--architecture YOUR_CODE.py:YourModel "
        try:
            obj, _ = _restricted(path) if path.suffix != ".safetensors" else (_safetensors(path), [])
        except CheckpointError:
            obj = None
        if obj is None or _pickled_module(obj) is not None:
            what = "a whole pickled module (or other pickled objects)"
            arch += "--allow-pickle "
            flags += " --allow-pickle"
        else:
            what = "a state dict (weights without the model's code)"
    image = _looks_like_image(path)
    family = (
        "--family image-classifier --preprocessing '{\"size\": [H, W], \"channels\": C, \"mean\": [...], \"std\": [...]}'"
        if image
        else "--family text-classifier (or causal-lm) --tokenizer tokenizer.json"
    )
    out = path.stem + "/"
    return (
        f"{path} is {what}, not a checkpoint folder: explain pack makes one: "
        f"explain pack {arch}--weights {path} {family} --out {out} ; then: explain run {out} ... {flags}"
    )


def _tensors_within(obj: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Yield the tensors in a checkpoint as read: in dicts, lists and stand-ins (a pickled module's parameters)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 12:
        if isinstance(obj, StandIn):
            obj = [getattr(obj, "state", None), getattr(obj, "args", ())]
        values = obj.values() if isinstance(obj, Mapping) else obj if isinstance(obj, (list, tuple)) else ()
        for v in values:
            yield from _tensors_within(v, depth + 1)


def _safetensors(path: Path) -> Any:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception:  # an unreadable file: the message says what to do either way
        return None


def _looks_like_image(path: Path) -> bool:
    """Return whether a weights file holds a convolution kernel (4-D tensor): an image model, most likely."""
    try:
        if is_torchscript(path):  # its code is read as text, never loaded: no trust was given
            with zipfile.ZipFile(path) as z:
                return any(b"conv2d" in z.read(n) or b"_convolution" in z.read(n) for n in z.namelist() if "/code/" in n and n.endswith(".py"))
        obj = _safetensors(path) if path.suffix == ".safetensors" else _restricted(path)[0]
        return any(t.dim() == 4 for t in _tensors_within(obj))
    except Exception:  # a hint only: an unreadable file gets the text family's command
        return False
