"""Adapters over hand-written PyTorch modules: text classifiers, causal LMs and image classifiers.

Shared by `explain.from_model` (a module in memory) and the `explain-torch` folder loader. The
module is checked against the forward contract with one forward before any input runs, so a
wrong shape is one clear error at load time, not a failure per input.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..adapters.answer_row import check_rule
from ..adapters.base import Adapter
from ..adapters.preprocessing import Preprocessing
from ..adapters.torch_shim import OwnTextModel
from ..adapters.torch_tokenizer import as_hf_tokenizer, vocab_size
from ..errors import CheckpointError
from ..results.explanation import ModelInfo
from ..execution.runner import Runner

FAMILIES = ("causal-lm", "text-classifier", "image-classifier")
_POSITION_HINTS = ("pos", "wpe", "position")
# A TorchScript program takes no Python hooks ("register_forward_hook is not supported on
# ScriptModules"); forward and input gradients work, so the other methods run.
_SCRIPTED = {
    "gradcam": "Grad-CAM reads a layer's activations and gradients through hooks, which a TorchScript program does not take",
    "ig": "IG on text replaces the token embeddings inside the model through a hook, which a TorchScript program does not take",
    "attention": "attention maps are read inside the model through hooks, which a TorchScript program does not take",
}


def build_own_adapter(
    module: nn.Module,
    family: str,
    runner: Runner,
    *,
    tokenizer: Any = None,
    preprocessing: Preprocessing | None = None,
    labels: Sequence[str] | None = None,
    embeddings: str | nn.Module | None = None,
    attention_probs: str | None = None,
    special_tokens: Mapping[str, Any] | None = None,
    max_length: int | None = None,
    path: str = "<in memory>",
    content_hash: str = "",
    architecture: str | None = None,
    answer_row: str | None = None,
) -> Adapter:
    """Return the adapter of a hand-written module of `family`, on the runner's device, in eval mode.

    `answer_row` ("first" | "last" | "mean") says which token(s) a text classifier's head reads
    (explain.adapters.answer_row); it is kept on the wrapper as `adapter.model.answer_row`. An
    image transformer states "first" (a class token) or "mean" (the mean of its patch tokens);
    it is kept as `adapter.answer_row`, with `attention_probs` as `adapter.attention_probs`.
    """
    if family not in FAMILIES:
        raise CheckpointError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")
    module.to(runner.device).eval()
    arch = architecture or type(module).__name__
    if family == "image-classifier":
        adapter = _image_adapter(module, preprocessing, labels, runner, path, content_hash, arch)
        # a vision transformer's attention capture and head rule (explain.adapters.patch_tokens)
        setattr(adapter, "attention_probs", attention_probs)
        setattr(adapter, "answer_row", check_rule(answer_row))
        return _limited(adapter, module)
    if tokenizer is None:
        raise CheckpointError(f"a {family} needs its tokenizer (a tokenizers JSON file, an HF tokenizer, or an encode/decode object)")
    tok = as_hf_tokenizer(tokenizer, special_tokens)
    n_vocab = vocab_size(tok)
    emb_name = embedding_name(module, embeddings, n_vocab)
    filler = next((v for v in (getattr(tok, "unk_token_id", None), getattr(tok, "eos_token_id", None)) if v is not None), 0)
    empty = next((v for v in (getattr(tok, f"{r}_token_id", None) for r in ("pad", "unk", "mask")) if v is not None), None)
    model = OwnTextModel(module, family, emb_name, attention_probs=attention_probs, filler_id=int(filler), empty_id=empty)
    setattr(model, "answer_row", check_rule(answer_row))  # None: not stated (attention reports the rule it assumed)
    names = check_contract(model, family, labels, n_vocab, runner.device)
    info = ModelInfo(
        family=family,
        path=path,
        content_hash=content_hash,
        parameters=sum(p.numel() for p in module.parameters()),
        labels=names,
        architecture=arch,
        device=str(runner.device),
        layers=None,
        heads=None,
        max_length=max_length or _max_length(module, emb_name, tok),
    )
    if family == "text-classifier":
        from ..adapters.text import TextClassifierAdapter

        return _limited(TextClassifierAdapter(model, tok, info, runner), module)
    from ..adapters.causal_lm import CausalLMAdapter

    return _limited(CausalLMAdapter(model, tok, info, runner), module)


def _limited(adapter: Adapter, module: nn.Module) -> Adapter:
    """Return the adapter with the methods a TorchScript program cannot serve refused, each with its reason."""
    if isinstance(module, torch.jit.ScriptModule):
        names = ("gradcam",) if adapter.family == "image-classifier" else ("ig", "attention")
        adapter.refused.update({n: _SCRIPTED[n] for n in names})
    return adapter


def embedding_name(module: nn.Module, given: str | nn.Module | None, n_vocab: int | None) -> str:
    """Return the name of the token embedding: the one given, else the nn.Embedding that fits the vocabulary."""
    named = dict(module.named_modules())
    if isinstance(given, nn.Module):
        for name, m in named.items():
            if m is given:
                return name
        raise CheckpointError("the embeddings module given is not a part of the model")
    if given:
        if given not in named:
            near = [n for n in named if n.endswith(given)]
            if len(near) == 1:
                return near[0]
            raise CheckpointError(f"the model has no module named {given!r} (embeddings)")
        return given
    embs = [(n, size) for n, m in named.items() if (size := embedding_size(m)) is not None]
    if not embs:
        raise CheckpointError("the model has no nn.Embedding: name its token embedding module with 'embeddings'")
    if n_vocab is not None:
        exact = [n for n, size in embs if size == n_vocab]
        if len(exact) == 1:
            return exact[0]
        # nanoGPT pads the vocabulary up (50257 -> 50304): the smallest table that holds every id.
        holds = sorted((size, n) for n, size in embs if size >= n_vocab)
        if holds and not exact:
            return holds[0][1]
    largest = max(embs, key=lambda x: x[1])
    return largest[0]


def embedding_size(m: nn.Module) -> int | None:
    """Return the table size of an nn.Embedding (also one compiled into TorchScript), else None."""
    if isinstance(m, nn.Embedding):
        return int(m.num_embeddings)
    weight = getattr(m, "weight", None)
    if isinstance(m, torch.jit.ScriptModule) and getattr(m, "original_name", "") == "Embedding" and isinstance(weight, torch.Tensor):
        return int(weight.shape[0])
    return None


def check_contract(model: OwnTextModel, family: str, labels: Sequence[str] | None, n_vocab: int | None, device: torch.device) -> tuple[str, ...]:
    """Run one forward on a short row and return the label names; raise CheckpointError naming a wrong shape."""
    ids = torch.full((1, 3), model.filler_id, dtype=torch.long, device=device)
    with torch.no_grad():
        try:
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        except CheckpointError:
            raise
        except Exception as e:  # the user's forward may raise anything on a contract mismatch
            raise CheckpointError(f"the model's forward fails on input_ids of shape (1, 3): {_first_line(e)}") from e
    if family == "causal-lm":
        if n_vocab is not None and out.shape[-1] < n_vocab:
            raise CheckpointError(f"the model scores {out.shape[-1]} tokens but the tokenizer has {n_vocab}")
        return ()
    classes = int(out.shape[-1])
    if labels:
        if len(labels) != classes:
            raise CheckpointError(f"{len(labels)} labels given but the model has {classes} outputs")
        return tuple(str(x) for x in labels)
    return tuple(str(i) for i in range(classes))


def _image_adapter(
    module: nn.Module, prep: Preprocessing | None, labels: Sequence[str] | None, runner: Runner, path: str, content_hash: str, arch: str
) -> Adapter:
    from ..adapters.image import ImageClassifierAdapter

    if prep is None:
        raise CheckpointError("an image classifier needs preprocessing (size, channels, mean, std)")
    x = torch.zeros(1, prep.channels, *prep.size, device=runner.device)
    with torch.no_grad():
        try:
            out = module(x)
        except Exception as e:  # the user's forward may raise anything on a contract mismatch
            raise CheckpointError(f"the model's forward fails on images of shape {tuple(x.shape)}: {_first_line(e)}") from e
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CheckpointError(f"an image classifier must return logits (batch, classes); got {got} for images {tuple(x.shape)}")
    classes = int(out.shape[-1])
    names = tuple(str(x) for x in labels) if labels else tuple(str(i) for i in range(classes))
    if len(names) != classes:
        raise CheckpointError(f"{len(names)} labels given but the model has {classes} outputs")
    info = ModelInfo(
        family="image-classifier",
        path=path,
        content_hash=content_hash,
        parameters=sum(p.numel() for p in module.parameters()),
        labels=names,
        architecture=arch,
        device=str(runner.device),
    )
    return ImageClassifierAdapter(module, prep, info, runner)


def _max_length(module: nn.Module, emb_name: str, tok: Any) -> int | None:
    """Return the longest input: a position embedding's size, else the tokenizer's limit, else None."""
    for name, m in module.named_modules():
        size = embedding_size(m)
        if size is not None and name != emb_name and any(h in name.lower() for h in _POSITION_HINTS):
            return size
    for name, p in module.named_parameters():
        if any(h in name.lower() for h in _POSITION_HINTS) and p.dim() >= 2:
            return int(p.shape[-2])  # a learnt position table (1, max_len, D) or (max_len, D)
    tml = getattr(tok, "model_max_length", None)
    return int(tml) if isinstance(tml, int) and 0 < tml < 1_000_000 else None


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).strip().splitlines()[:1]) or type(e).__name__
    return text if len(text) < 300 else text[:300] + "..."
