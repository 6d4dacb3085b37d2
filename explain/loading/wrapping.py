"""Explain models already in memory: a transformers model + tokenizer, a pipeline, or a CNN module."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..adapters.base import Adapter
from ..adapters.preprocessing import Preprocessing
from ..execution.devices import resolve_device
from ..errors import CheckpointError
from ..results.hashing import state_hash
from .checkpoint import build_hf_adapter, family_of_class
from ..execution.runner import Runner


def from_model(
    model: Any,
    tokenizer: Any = None,
    *,
    preprocessing: Preprocessing | Mapping[str, Any] | Any = None,
    labels: list[str] | tuple[str, ...] | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    autocast: str | None = None,
    max_memory: int | str | None = None,
    family: str | None = None,
    embeddings: str | torch.nn.Module | None = None,
    attention_probs: str | None = None,
    special_tokens: Mapping[str, Any] | None = None,
    max_length: int | None = None,
    answer_row: str | None = None,
    head: str | None = None,
    sequence_first: bool | None = None,
) -> Adapter:
    """Return an adapter for an in-memory model, so scripts need not save a checkpoint first.

    - a transformers `Pipeline`: its model and tokenizer (or image processor) are used;
    - a transformers `*ForSequenceClassification` / `*ForCausalLM` model with its `tokenizer`;
    - a transformers `*ForImageClassification` model with its image processor (second argument
      or `preprocessing`);
    - any `torch.nn.Module` image classifier with `preprocessing` (a `Preprocessing` or a dict
      like the plain CNN config's: size, channels, mean, std) and optionally `labels`;
    - any `torch.nn.Module` text model with `family="text-classifier"` or `"causal-lm"` and its
      `tokenizer` (a tokenizers JSON path or `Tokenizer`, an HF tokenizer, or an object with
      encode/decode), keeping the forward contract (explain/adapters/torch_shim.py);
      `embeddings` names the token embedding module (default: the nn.Embedding that fits the
      vocabulary), `attention_probs` a module-name glob whose outputs are attention probabilities,
      `answer_row` ("first" | "last" | "mean") which token(s) an own text classifier's head reads;
    - for any own `torch.nn.Module`: `head` ("softmax" | "sigmoid" | "probabilities" |
      "log_probabilities" | "regression") what its outputs are (default: read at load from two
      probe rows: one output is a binary classifier's logit, rows summing to 1 are probabilities;
      what was assumed is said in an ExplainWarning), and for text `sequence_first=True` for a
      model that reads (T, B) ids (default: found by the probe). fp16 / bf16 modules get inputs
      in their own dtype and are attributed in float32.
    """
    if _is_pipeline(model):
        pipe = model
        model = pipe.model
        tokenizer = tokenizer or getattr(pipe, "tokenizer", None)
        preprocessing = preprocessing or getattr(pipe, "image_processor", None)
    runner = Runner(resolve_device(device), batch_size=batch_size, autocast=autocast, max_memory=max_memory)
    hf_family = family_of_class(type(model).__name__) if hasattr(model, "config") else None
    if hf_family is not None:
        if hf_family == "image-classifier" and preprocessing is None:
            preprocessing, tokenizer = tokenizer, None  # from_model(model, image_processor), as (model, tokenizer)
        prep = _preprocessing(preprocessing) if hf_family == "image-classifier" else None
        return build_hf_adapter(
            model, hf_family, tokenizer=tokenizer, prep=prep, path="<in memory>", content_hash=state_hash(model), runner=runner
        )
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f"cannot explain a {type(model).__name__}: pass a transformers model, a pipeline or a torch.nn.Module")
    if family is None:
        if tokenizer is not None:
            raise CheckpointError("a torch.nn.Module with a tokenizer needs family='text-classifier' or family='causal-lm'")
        family = "image-classifier"
    if family == "image-classifier" and preprocessing is None:
        raise CheckpointError("a plain torch.nn.Module image classifier needs preprocessing=(size, channels, mean, std)")
    from .own_model import build_own_adapter

    return build_own_adapter(
        model,
        family,
        runner,
        tokenizer=tokenizer,
        preprocessing=_preprocessing(preprocessing) if family == "image-classifier" else None,
        labels=labels,
        embeddings=embeddings,
        attention_probs=attention_probs,
        special_tokens=special_tokens,
        max_length=max_length,
        answer_row=answer_row,
        head=head,
        sequence_first=sequence_first,
        content_hash=state_hash(model),
    )


def as_adapter(model: Any) -> Adapter:
    """Return `model` if it is an adapter; wrap a pipeline or a (model, tokenizer) pair."""
    if isinstance(model, Adapter):
        return model
    if isinstance(model, tuple) and len(model) == 2:
        return from_model(model[0], model[1])
    if _is_pipeline(model):
        return from_model(model)
    raise CheckpointError(
        f"explain() takes a model from explain.load() or explain.from_model(), not a {type(model).__name__}"
    )


def _preprocessing(value: Any) -> Preprocessing:
    if isinstance(value, Preprocessing):
        return value
    if isinstance(value, Mapping):
        return Preprocessing.from_config(value)
    if value is not None and (hasattr(value, "image_mean") or hasattr(value, "size")):
        return Preprocessing.from_hf(value)
    raise CheckpointError("an image classifier needs preprocessing: an image processor, a Preprocessing or a dict")


def _is_pipeline(obj: Any) -> bool:
    try:
        from transformers import Pipeline
    except ImportError:  # pragma: no cover - transformers is a dependency
        return False
    return isinstance(obj, Pipeline)
