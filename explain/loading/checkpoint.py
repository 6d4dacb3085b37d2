"""One entry to load a checkpoint: recognise its family from its own files, return an adapter.

Recognised: Hugging Face folders (sequence classifiers, causal LMs, image classifiers), hub ids
already in the local Hugging Face cache (never downloaded), plain PyTorch folders
("format": "explain-torch": the user's own class, its weights and tokenizer or preprocessing;
see torch_folder.py) and today's plain CNNs ("format": "explain-cnn"). Loading
is safe by default: safetensors preferred, torch.load only with weights_only=True, pickled
Hugging Face weights only with allow_pickle, remote code only with trust_remote_code.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..adapters.base import Adapter
from ..results.hashing import content_hash
from ..adapters.preprocessing import Preprocessing
from ..execution.devices import resolve_device
from ..errors import CheckpointError, ExplainWarning
from ..results.explanation import ModelInfo
from ..execution.runner import Runner
from ..execution.scope import quiet_transformers

_FAMILY_SUFFIXES = (
    ("ForSequenceClassification", "text-classifier"),
    # A token classifier, explained one word's label at a time, is a text classifier answering
    # at that word's row (explain/adapters/token_classifier.py).
    ("ForTokenClassification", "text-classifier"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForImageClassification", "image-classifier"),
)
_SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# RoBERTa-style models number positions from padding_idx + 1, so two positions are unusable.
_POSITION_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "longformer", "xlm-roberta-xl", "data2vec-text"}


def load(
    path: str | os.PathLike[str],
    device: str | torch.device = "auto",
    *,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    allow_missing_weights: bool = False,
    batch_size: int | None = None,
    autocast: str | None = None,
    max_memory: int | str | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> Adapter:
    """Return the model adapter for the checkpoint at `path`, on `device` and in eval mode.

    `max_memory` (bytes, or a size such as "2GB") caps the activation memory of one model
    call: gradient methods split their rows into chunks that fit it.
    `device_map` ("auto", "balanced", "sequential", or a dict of module -> device) spreads a
    Hugging Face model over the GPUs of this machine with accelerate (and over CPU memory
    when they are full); `max_memory` then also caps each GPU's share of the weights.
    Inputs go to the device of the model's first layers; `device` is not used.
    """
    dev = resolve_device("auto" if device_map is not None else device)
    runner = Runner(dev, batch_size=batch_size, autocast=autocast, max_memory=max_memory)
    p = locate(path)
    if device_map is not None and (_is_plain_cnn(p) or _torch_format(p)):
        raise CheckpointError(f"--device-map needs a Hugging Face checkpoint; {path} is a plain PyTorch one: give it one --device")
    if p.is_file():
        if p.suffix in (".safetensors", ".pt", ".pth"):
            return _load_plain_cnn(p.parent, p, dev, runner)
        if p.name == "config.json":
            p = p.parent
        else:
            raise CheckpointError(
                f"{path} is a file; give a checkpoint folder (with config.json) or a plain CNN's .safetensors file"
            )
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{path} is not a checkpoint: it has no config.json (expected a Hugging Face model folder, "
            "or a plain CNN folder with config.json and model.safetensors)"
        )
    cfg = _read_json(cfg_path)
    if cfg.get("format") == "explain-cnn":
        return _load_plain_cnn(p, None, dev, runner)
    if cfg.get("format") == "explain-torch":
        from .torch_folder import load_torch_folder

        return load_torch_folder(p, cfg, runner, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if "model_type" in cfg:
        placement = _placement(device_map, max_memory)
        return _load_hf(p, cfg, trust_remote_code, allow_pickle, allow_missing_weights, runner, placement)
    raise CheckpointError(
        f"{cfg_path} names neither a Hugging Face model ('model_type') nor a plain PyTorch model ('format': 'explain-torch')"
    )


def locate(path: str | os.PathLike[str]) -> Path:
    """Return the checkpoint path: an existing path, or a hub id's snapshot in the local Hugging Face cache."""
    p = Path(path).expanduser()
    if p.exists():
        return p
    from .hub_cache import looks_like_hub_id, resolve_hub_id

    if looks_like_hub_id(str(path)):
        return resolve_hub_id(str(path))
    raise CheckpointError(f"checkpoint not found: {path}")


def _torch_format(p: Path) -> bool:
    """Return True for an explain-torch folder (or its config.json)."""
    cfg = p / "config.json" if p.is_dir() else p
    if cfg.name != "config.json" or not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("format") == "explain-torch"
    except (OSError, ValueError, AttributeError):
        return False


def hf_family(cfg: dict[str, Any]) -> str:
    """Return the family of a Hugging Face config from its 'architectures' entry."""
    archs = cfg.get("architectures") or []
    for arch in archs:
        family = family_of_class(str(arch))
        if family:
            return family
    raise CheckpointError(
        f"cannot tell what kind of model this is: config.json 'architectures' is {archs!r}; "
        "supported are *ForSequenceClassification, *ForTokenClassification, *ForCausalLM / *LMHeadModel and *ForImageClassification"
    )


def family_of_class(name: str) -> str | None:
    """Return the family a Hugging Face class name belongs to, or None."""
    for suffix, family in _FAMILY_SUFFIXES:
        if name.endswith(suffix):
            return family
    return None


def _load_hf(
    p: Path,
    cfg: dict[str, Any],
    trust_remote_code: bool,
    allow_pickle: bool,
    allow_missing: bool,
    runner: Runner,
    placement: dict[str, Any] | None = None,
) -> Adapter:
    """Load a Hugging Face folder quietly: transformers' log level and progress bars are put back after."""
    with quiet_transformers():
        return _load_hf_folder(p, cfg, trust_remote_code, allow_pickle, allow_missing, runner, placement)


def _load_hf_folder(
    p: Path,
    cfg: dict[str, Any],
    trust_remote_code: bool,
    allow_pickle: bool,
    allow_missing: bool,
    runner: Runner,
    placement: dict[str, Any] | None = None,
) -> Adapter:
    import transformers

    family = hf_family(cfg)
    safe = [p / n for n in _SAFE_WEIGHTS if (p / n).exists()]
    pickled = [p / n for n in _PICKLE_WEIGHTS if (p / n).exists()]
    if not safe and pickled and not allow_pickle:
        raise CheckpointError(
            f"{p} has only pickled weights ({pickled[0].name}), which can run code when loaded; "
            "convert them to safetensors or pass --allow-pickle if you trust the file"
        )
    if not safe and not pickled:
        raise CheckpointError(f"{p} has no weights file (model.safetensors or pytorch_model.bin)")
    auto = {
        "text-classifier": transformers.AutoModelForSequenceClassification,
        "causal-lm": transformers.AutoModelForCausalLM,
        "image-classifier": transformers.AutoModelForImageClassification,
    }[family]
    from ..adapters.token_classifier import is_token_classifier

    if any(is_token_classifier(str(a)) for a in cfg.get("architectures") or []):
        auto = transformers.AutoModelForTokenClassification
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, info = auto.from_pretrained(
                str(p), use_safetensors=bool(safe), output_loading_info=True, **common, **(placement or {})
            )
    except Exception as e:  # transformers raises many types for unreadable or mismatched weights
        raise CheckpointError(f"cannot load the model in {p}: {_first_line(e)}") from e
    if placement:
        runner.device = first_device(model)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "mismatched_keys")}
    if problems and not allow_missing:
        detail = "; ".join(f"{k.replace('_', ' ')}: {_short(v)}" for k, v in problems.items())
        raise CheckpointError(
            f"the weights in {p} do not fit its config ({detail}); those parameters would be left "
            "random: fix the checkpoint or pass --allow-missing-weights"
        )
    weights = safe or pickled
    shards = [p / f for f in _shard_names(weights[0])] if weights[0].name.endswith(".index.json") else weights
    tokenizer, prep = None, None
    if family == "image-classifier":
        prep = _image_preprocessing(p, model.config, common)
    else:
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(p), **common)
        except Exception as e:
            raise CheckpointError(f"{p} has no usable tokenizer: {_first_line(e)}") from e
    return build_hf_adapter(
        model,
        family,
        tokenizer=tokenizer,
        prep=prep,
        path=str(p.resolve()),
        content_hash=content_hash([*shards, p / "config.json"]),
        runner=runner,
    )


def _image_preprocessing(p: Path, config: Any, common: dict[str, Any]) -> Preprocessing:
    """Return the folder's image preprocessing: its image processor's, or (none saved) what its
    config implies, with an ExplainWarning saying what was assumed. An unreadable processor
    file is a CheckpointError: silently replacing it by defaults would change every score."""
    import transformers

    found = [f for f in ("preprocessor_config.json", "processor_config.json") if (p / f).is_file()]
    if not found:
        prep = Preprocessing.from_model_config(config)
        warnings.warn(f"{p}: {prep.assumed}", ExplainWarning, stacklevel=5)  # the caller of load()
        return prep
    try:
        return Preprocessing.from_hf(transformers.AutoImageProcessor.from_pretrained(str(p), **common))
    except Exception as e:  # transformers raises many types for a malformed processor file
        raise CheckpointError(f"{p / found[0]} cannot be read as an image processor: {_first_line(e)}") from e


def _runs_on(model: Any, prep: Preprocessing, device: torch.device) -> None:
    """Raise CheckpointError unless the image model runs on one blank input of the size its
    preprocessing gives: a model that cannot run at all fails here in one line, not on every input."""
    try:
        with torch.inference_mode():
            model(torch.zeros(1, prep.channels, *prep.size, device=device))
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # a size or channel count the model does not take, a broken config
        raise CheckpointError(f"the model does not run on the input its preprocessing gives ({prep.describe()}): {_first_line(e)}") from e


def build_hf_adapter(
    model: Any, family: str, *, tokenizer: Any, prep: Preprocessing | None, path: str, content_hash: str, runner: Runner
) -> Adapter:
    """Return the adapter of a loaded Hugging Face model, moved to the runner's device, in eval mode.

    A model already spread over devices by accelerate (it has `hf_device_map`) stays where it is.
    """
    if getattr(model, "hf_device_map", None):
        model.eval()
    else:
        model.to(runner.device).eval()
    config = model.config
    labels: tuple[str, ...] = ()
    if family != "causal-lm":
        id2label = getattr(config, "id2label", None) or {}
        labels = tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(_num_labels(config)))
    text_cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    info = ModelInfo(
        family=family,
        path=path,
        content_hash=content_hash,
        parameters=sum(t.numel() for t in model.parameters()),
        labels=labels,
        architecture=str((getattr(config, "architectures", None) or [type(model).__name__])[0]),
        device=str(runner.device),
        layers=getattr(text_cfg, "num_hidden_layers", None),
        heads=getattr(text_cfg, "num_attention_heads", None),
        max_length=_max_length(tokenizer, text_cfg) if tokenizer is not None else None,
    )
    width = getattr(text_cfg, "hidden_size", None)
    runner.width = width if isinstance(width, int) and width > 0 else None  # sizes CPU calls of text rows
    if family == "image-classifier":
        from ..adapters.image import ImageClassifierAdapter

        if prep is None:
            raise CheckpointError("an image classifier needs its preprocessing (an image processor or size/mean/std)")
        _runs_on(model, prep, runner.device)
        return _with_head(ImageClassifierAdapter(model, prep, info, runner), config)
    if tokenizer is None:
        raise CheckpointError(f"a {family} needs its tokenizer")
    if family == "text-classifier":
        from ..adapters.pairs import PairTextClassifierAdapter
        from ..adapters.token_classifier import TokenClassifierAdapter, is_token_classifier

        if is_token_classifier(type(model).__name__):
            return _with_head(TokenClassifierAdapter(model, tokenizer, info, runner), config)
        return _with_head(PairTextClassifierAdapter(model, tokenizer, info, runner), config)  # single texts and sentence pairs
    from ..adapters.causal_lm import CausalLMAdapter

    return CausalLMAdapter(model, tokenizer, info, runner)


def _with_head(adapter: Adapter, config: Any) -> Adapter:
    """Return the classifier adapter with its head set from the config, as transformers' own loss reads it:
    problem_type "multi_label_classification" -> a sigmoid per label; "regression" (or one label
    and no problem_type) -> the value itself, said in an ExplainWarning; else one softmax."""
    problem = getattr(config, "problem_type", None)
    if problem == "multi_label_classification":
        adapter.head = "sigmoid"
    elif problem == "regression" or (problem is None and _num_labels(config) == 1):
        adapter.head = "identity"
        warnings.warn(f"{adapter.info.path}: a regression head (one output, no problem_type or 'regression'): every method explains "
                      "the predicted value itself; what results and reports call its probability is that value", ExplainWarning, stacklevel=3)
    return adapter


def first_device(model: Any) -> torch.device:
    """Return the device of a dispatched model's input embeddings, where its inputs must go.

    accelerate's hooks move each layer's inputs to that layer's device and bring the outputs
    back to the device of the inputs, so the adapters need only this one device.
    """
    try:
        return next(model.get_input_embeddings().parameters()).device
    except (AttributeError, NotImplementedError, StopIteration):
        pass
    devices = [d for d in (getattr(model, "hf_device_map", None) or {}).values() if d not in ("disk", "meta")]
    first = devices[0] if devices else "cpu"
    return torch.device(f"cuda:{first}" if isinstance(first, int) else str(first))


def _placement(device_map: str | dict[str, Any] | None, max_memory: int | str | None) -> dict[str, Any] | None:
    """Return from_pretrained's device_map (and accelerate's per-device max_memory) arguments."""
    if device_map is None:
        return None
    if isinstance(device_map, str) and device_map not in ("auto", "balanced", "balanced_low_0", "sequential", "cpu"):
        raise CheckpointError(f"unknown device map {device_map!r}: use auto, balanced, balanced_low_0, sequential or cpu")
    try:
        import accelerate  # noqa: F401  (transformers needs it for any device_map)
    except ImportError:
        raise CheckpointError('--device-map needs accelerate: pip install "explain[distributed]" (or accelerate)') from None
    out: dict[str, Any] = {"device_map": device_map}
    if max_memory is not None:
        import psutil

        from ..execution.runner import parse_size

        cap = parse_size(max_memory)
        gpus = torch.cuda.device_count()
        caps: dict[Any, int] = {i: cap for i in range(gpus)}
        # Without a GPU the weights live in CPU memory, capped; with GPUs, what they cannot hold
        # spills into the free CPU memory (slower, but it runs).
        caps["cpu"] = cap if gpus == 0 else int(psutil.virtual_memory().available)
        out["max_memory"] = caps
    return out


def _is_plain_cnn(p: Path) -> bool:
    if p.is_file():
        return p.suffix in (".safetensors", ".pt", ".pth")
    cfg = p / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("format") == "explain-cnn"
    except (OSError, ValueError, AttributeError):
        return False


def checkpoint_family(path: str | os.PathLike[str]) -> str:
    """Return the family of the checkpoint at `path` from its config alone (no weights are read)."""
    p = locate(path)
    if _is_plain_cnn(p):
        return "image-classifier"
    folder = p.parent if p.is_file() and p.name == "config.json" else p
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{path} is not a checkpoint: it has no config.json (expected a Hugging Face model folder, "
            "or a plain CNN folder with config.json and model.safetensors)"
        )
    cfg = _read_json(folder / "config.json")
    if cfg.get("format") == "explain-torch":
        if cfg.get("family") not in ("causal-lm", "text-classifier", "image-classifier"):
            raise CheckpointError(f"{folder / 'config.json'}: 'family' is {cfg.get('family')!r}; use causal-lm, text-classifier or image-classifier")
        return str(cfg["family"])
    if "model_type" not in cfg:
        raise CheckpointError(f"{folder / 'config.json'} names neither a Hugging Face model ('model_type') nor a plain CNN ('format': 'explain-cnn')")
    return hf_family(cfg)


def _load_plain_cnn(
    folder: Path, weights: Path | None, dev: torch.device, runner: Runner
) -> Adapter:
    from safetensors.torch import load_file

    from ..adapters.image import ImageClassifierAdapter
    from .cnn import build_architecture

    cfg_path = folder / "config.json"
    if not cfg_path.is_file() and weights is not None:
        cfg_path = weights.with_suffix(".json")
    if not cfg_path.is_file():
        raise CheckpointError(f"no config.json beside {weights or folder}: a plain CNN needs one naming its architecture")
    cfg = _read_json(cfg_path)
    for key in ("architecture", "labels", "preprocessing"):
        if key not in cfg:
            raise CheckpointError(f"{cfg_path} lacks '{key}' (a plain CNN config needs architecture, labels, preprocessing)")
    if weights is None:
        found = [folder / n for n in ("model.safetensors", "model.pt", "model.pth") if (folder / n).exists()]
        if not found:
            raise CheckpointError(f"{folder} has no weights file (model.safetensors)")
        weights = found[0]
    try:
        if weights.suffix == ".safetensors":
            state = load_file(str(weights))
        else:  # weights_only refuses arbitrary pickled objects: tensors and containers only
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors raises its own error type for truncated or corrupt files
        raise CheckpointError(f"cannot read weights {weights}: {_first_line(e)}") from e
    try:
        model = build_architecture(str(cfg["architecture"]), dict(cfg.get("arch_args", {})))
    except (KeyError, ImportError, TypeError) as e:
        raise CheckpointError(f"cannot build architecture {cfg['architecture']!r}: {_first_line(e)}") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"the weights {weights.name} do not fit {cfg['architecture']}: {_first_line(e, 2)}") from e
    prep = Preprocessing.from_config(cfg["preprocessing"])
    labels = tuple(str(x) for x in cfg["labels"])
    model.to(dev).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, prep.channels, *prep.size, device=dev))
    if out.shape[-1] != len(labels):
        raise CheckpointError(f"{cfg_path} lists {len(labels)} labels but the model has {out.shape[-1]} outputs")
    info = ModelInfo(
        family="image-classifier",
        path=str(folder.resolve()),
        content_hash=content_hash([weights, cfg_path]),
        parameters=sum(t.numel() for t in model.parameters()),
        labels=labels,
        architecture=str(cfg["architecture"]),
        device=str(dev),
    )
    return ImageClassifierAdapter(model, prep, info, runner)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not readable JSON: {_first_line(e)}") from e
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return doc


def _num_labels(config: Any) -> int:
    return int(getattr(config, "num_labels", None) or len(getattr(config, "id2label", {}) or {}) or 2)


def _max_length(tokenizer: Any, config: Any) -> int | None:
    limits = []
    tml = getattr(tokenizer, "model_max_length", None)
    if tml and tml < 1_000_000:
        limits.append(int(tml))
    for name in ("max_position_embeddings", "n_positions"):
        v = getattr(config, name, None)
        if isinstance(v, int) and v > 0:
            offset = 2 if getattr(config, "model_type", "") in _POSITION_OFFSET_TYPES else 0
            limits.append(v - offset)
    return min(limits) if limits else None


def _shard_names(index_file: Path) -> list[str]:
    doc = _read_json(index_file)
    return sorted(set(doc.get("weight_map", {}).values()))


def _first_line(e: BaseException, lines: int = 1) -> str:
    text = " ".join(str(e).strip().splitlines()[:lines]) or type(e).__name__
    return text if len(text) < 400 else text[:400] + "..."


def _short(items: Any, n: int = 4) -> str:
    items = [str(x[0] if isinstance(x, tuple) else x) for x in items]
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
