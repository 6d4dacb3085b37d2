"""Adapters over hand-written PyTorch modules: text classifiers, causal LMs and image classifiers.

Shared by `explain.from_model` (a module in memory) and the `explain-torch` folder loader. The
module is probed at load (explain/loading/probe.py: two different rows, each also alone; its
head, layout, attention mask and gradients read), so a wrong shape or a layout the toolkit
would misread is one clear error at load time, not a failure per input or a wrong answer.
What the probe assumed is said in one ExplainWarning per fact.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..adapters.answer_row import check_rule
from ..adapters.base import Adapter
from ..adapters.heads import BINARY_LABELS, Reader, check_head
from ..adapters.preprocessing import Preprocessing
from ..adapters.torch_shim import OwnTextModel
from ..adapters.torch_tokenizer import as_hf_tokenizer, vocab_size
from ..errors import CheckpointError, ExplainWarning
from ..results.explanation import ModelInfo
from ..execution.runner import Runner
from .probe import Probe, model_dtype, probe_image, probe_text

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
    head: str | None = None,
    sequence_first: bool | None = None,
) -> Adapter:
    """Return the adapter of a hand-written module of `family`, on the runner's device, in eval mode.

    `answer_row` ("first" | "last" | "mean") says which token(s) a text classifier's head reads
    (explain.adapters.answer_row); it is kept on the wrapper as `adapter.model.answer_row`. An
    image transformer states "first" (a class token) or "mean" (the mean of its patch tokens);
    it is kept as `adapter.answer_row`, with `attention_probs` as `adapter.attention_probs`.
    `head` ("softmax" | "sigmoid" | "probabilities" | "log_probabilities" | "regression") says
    what the model's outputs are (explain.adapters.heads; default: read from the probe rows).
    `sequence_first` says the model reads (T, B) ids (default: found by the probe).
    """
    if family not in FAMILIES:
        raise CheckpointError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")
    stated_head = check_head(head)
    if sequence_first is not None and not isinstance(sequence_first, bool):
        raise CheckpointError(f"sequence_first is {sequence_first!r}: use true or false")
    module.to(runner.device).eval()
    arch = architecture or type(module).__name__
    if family == "image-classifier":
        image = _image_adapter(module, preprocessing, labels, runner, path, content_hash, arch, stated_head)
        # a vision transformer's attention capture and head rule (explain.adapters.patch_tokens)
        setattr(image, "attention_probs", attention_probs)
        setattr(image, "answer_row", check_rule(answer_row))
        return _limited(image, module)
    if tokenizer is None:
        raise CheckpointError(f"a {family} needs its tokenizer (a tokenizers JSON file, an HF tokenizer, or an encode/decode object)")
    tok = as_hf_tokenizer(tokenizer, special_tokens)
    n_vocab = vocab_size(tok)
    emb_name = embedding_name(module, embeddings, n_vocab)
    n_ids = _rows_of(dict(module.named_modules())[emb_name])
    if n_vocab is None and n_ids and hasattr(tok, "known_size"):
        tok.known_size = n_ids  # an encode/decode tokenizer that does not say its size: the embedding's
    filler = next((v for v in (getattr(tok, "unk_token_id", None), getattr(tok, "eos_token_id", None)) if v is not None), 0)
    empty = next((v for v in (getattr(tok, f"{r}_token_id", None) for r in ("pad", "unk", "mask")) if v is not None), None)
    model = OwnTextModel(module, family, emb_name, attention_probs=attention_probs, filler_id=int(filler), empty_id=empty)
    setattr(model, "answer_row", check_rule(answer_row))  # None: not stated (attention reports the rule it assumed)
    usable = min(n for n in (n_vocab, n_ids) if n) if (n_vocab or n_ids) else 1  # probe ids both tables hold
    with warnings.catch_warnings():  # the probe's forwards are ours: what torch says of them (nested tensors) is noise
        warnings.simplefilter("ignore")
        probe = probe_text(model, family, n_vocab, usable, runner, head=stated_head, labels=labels, sequence_first=sequence_first)
    names = _label_names(probe, labels, family)
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
    adapter: Adapter
    if family == "text-classifier":
        from ..adapters.text import TextClassifierAdapter

        adapter = TextClassifierAdapter(model, tok, info, runner)
    else:
        from ..adapters.causal_lm import CausalLMAdapter

        adapter = CausalLMAdapter(model, tok, info, runner)
    return _limited(_finish(adapter, probe, arch, 4), module)


def _limited(adapter: Adapter, module: nn.Module) -> Adapter:
    """Return the adapter with the methods a TorchScript program cannot serve refused, each with its reason."""
    if isinstance(module, torch.jit.ScriptModule):
        names = ("gradcam", "attention") if adapter.family == "image-classifier" else ("ig", "attention")
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
    embs = [(n, m) for n, m in named.items() if _rows_of(m)]
    if not embs:
        raise CheckpointError("the model has no nn.Embedding or nn.EmbeddingBag: name its token embedding module with 'embeddings'")
    # A position table (wpe, pos_emb) is never the token embedding, though a small model's may
    # hold as many rows as its vocabulary (block_size >= vocab_size).
    tokens = [(n, m) for n, m in embs if not any(h in n.rsplit(".", 1)[-1].lower() for h in _POSITION_HINTS)]
    embs = tokens or embs
    if n_vocab is not None:
        exact = [n for n, m in embs if _rows_of(m) == n_vocab]
        if len(exact) == 1:
            return exact[0]
        # nanoGPT pads the vocabulary up (50257 -> 50304): the smallest table that holds every id.
        holds = sorted((_rows_of(m), n) for n, m in embs if _rows_of(m) >= n_vocab)
        if holds and not exact:
            return holds[0][1]
    largest = max(embs, key=lambda x: _rows_of(x[1]))
    return largest[0]


def _rows_of(module: nn.Module) -> int:
    """Return how many token ids an embedding table holds (0 when the module is not one)."""
    return embedding_size(module) or 0


def embedding_size(m: nn.Module) -> int | None:
    """Return the table size of an nn.Embedding or nn.EmbeddingBag (also one compiled into TorchScript), else None."""
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return int(m.num_embeddings)
    weight = getattr(m, "weight", None)
    if isinstance(m, torch.jit.ScriptModule) and getattr(m, "original_name", "") in ("Embedding", "EmbeddingBag") and isinstance(weight, torch.Tensor):
        return int(weight.shape[0])
    return None


def _label_names(probe: Probe, labels: Sequence[str] | None, family: str) -> tuple[str, ...]:
    """Return the class names: the ones given (as many as the head's classes), else a binary head's, else 0..C-1."""
    if family == "causal-lm":
        return ()
    classes = probe.head.classes
    if labels:
        if len(labels) != classes:
            if probe.head.binary:
                raise CheckpointError(f"{len(labels)} labels given but the model has one output, read as a binary classifier: "
                                      "give two labels (negative, positive), or state \"head\": \"regression\"")
            raise CheckpointError(f"{len(labels)} labels given but the model has {classes} outputs")
        return tuple(str(x) for x in labels)
    if probe.head.binary:
        return BINARY_LABELS
    return tuple(str(i) for i in range(classes))


def _finish(adapter: Adapter, probe: Probe, arch: str, depth: int) -> Adapter:
    """Give the adapter what the probe found, and warn of what it assumed (one line each; `depth`:
    the frames up to from_model's caller)."""
    adapter.head = probe.head.adapter_head
    notes = list(probe.notes)
    if probe.gradient_cut:  # refused up front (methods.registry), and left out of "all"
        adapter.refused["ig"] = ("it needs the gradient of the output with respect to the input, and the model's forward cuts it "
                                 "(torch.no_grad() or .detach() inside forward)")
        notes.append("its forward cuts the gradient from the input to the output (torch.no_grad() or .detach() inside forward): "
                     "ig cannot run on it; shap, lime, occlusion and ablation can")
    for note in notes:
        warnings.warn(f"{arch}: {note}", ExplainWarning, stacklevel=depth)
    return adapter


def _image_adapter(
    module: nn.Module, prep: Preprocessing | None, labels: Sequence[str] | None, runner: Runner, path: str, content_hash: str, arch: str,
    head: str | None,
) -> Adapter:
    from ..adapters.image import ImageClassifierAdapter

    if prep is None:
        raise CheckpointError("an image classifier needs preprocessing (size, channels, mean, std)")
    dtype = model_dtype(module)
    with warnings.catch_warnings():  # the probe's forwards are ours: what torch says of them is noise
        warnings.simplefilter("ignore")
        probe = probe_image(module, prep, runner, dtype, head=head, labels=labels)
    info = ModelInfo(
        family="image-classifier",
        path=path,
        content_hash=content_hash,
        parameters=sum(p.numel() for p in module.parameters()),
        labels=_label_names(probe, labels, "image-classifier"),
        architecture=arch,
        device=str(runner.device),
    )
    adapter = ImageClassifierAdapter(module, prep, info, runner)
    adapter.read = Reader(probe.head)
    adapter.dtype = dtype
    return _finish(adapter, probe, arch, 5)


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
