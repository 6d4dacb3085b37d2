"""A hand-written text model seen through the calls the text adapters make.

The text-classifier and causal-LM adapters call `model(input_ids=, attention_mask=,
inputs_embeds=, position_ids=, output_attentions=, logits_to_keep=)` and read `.logits` and
`.attentions`, as on a Hugging Face model. `OwnTextModel` answers those calls for any module
that keeps the forward contract:

- a classifier maps `input_ids` (B, T) (and `attention_mask` if its forward accepts one) to
  logits (B, classes);
- a causal LM maps `input_ids` to logits (B, T, V), or (B, 1, V) for the last position only
  (nanoGPT's inference path: earlier positions then take one forward per prefix);
- either may return a tuple/list whose first element, or a dict/object whose `logits`, is that.

What the loader's probe (explain/loading/probe.py) found is kept here and applied to every
call: `head` turns the model's own output (one logit, probabilities, ...) into the logits the
adapters read (explain/adapters/heads.py); `sequence_first` gives a (T, B) model its ids
transposed (and a causal LM's (T, B, V) output back as (B, T, V)); `mask_mode` says how its
`attention_mask` reads ("long": 1 = token, "bool": True = token, "inverted": True = padding, as
PyTorch's src_key_padding_mask; None: padding is never shown to it).

Input embeddings replace the output of the token embedding module (a forward hook), so the
ids the model sees beside them are a filler id: a model must take its padding from
`attention_mask`, not from the values of the ids. A model whose forward has no usable
`attention_mask` never sees padding: rows are forwarded without it, grouped by length. An
`nn.EmbeddingBag` is attributed per token: its bag's mean / sum / max is taken over the given
embeddings. Embeddings of an fp16 / bf16 model are handed out in float32 (IG integrates in
float32) and cast to the model's dtype inside the forward.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError
from .attention_capture import AttentionCapture
from .heads import Head, logits_of

FAMILIES = ("text-classifier", "causal-lm")
MASK_MODES = ("long", "bool", "inverted")


class TokenLookup(nn.Module):
    """Per-token float32 embeddings of a model's embedding module (an nn.EmbeddingBag's rows, not its bags)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Return (..., D) float32 embeddings of token ids."""
        m = self.inner
        if isinstance(m, nn.EmbeddingBag):
            return F.embedding(ids, m.weight, padding_idx=m.padding_idx).float()
        return m(ids).float()


@dataclass
class OwnOutput:
    """What the adapters read from a forward: logits and, when asked for, attention maps."""

    logits: torch.Tensor
    attentions: tuple[torch.Tensor, ...] | None = None


class OwnTextModel(nn.Module):
    """Hugging Face-style keyword calls over a hand-written text classifier or causal LM."""

    def __init__(
        self, inner: nn.Module, family: str, embedding: str, *, attention_probs: str | None = None, filler_id: int = 0, empty_id: int | None = None
    ) -> None:
        """Wrap `inner`; `embedding` is the name of its token embedding module."""
        super().__init__()
        if family not in FAMILIES:
            raise CheckpointError(f"unknown text family {family!r}: use one of {', '.join(FAMILIES)}")
        self.inner = inner
        self.family = family
        self.embedding_name = embedding
        self.attention_probs = attention_probs
        self.filler_id = filler_id
        self.empty_id = empty_id  # stands for a row with no tokens left (see _fill_empty)
        try:
            params = inspect.signature(inner.forward).parameters
        except (TypeError, ValueError):  # builtins and TorchScript methods have no Python signature
            schema = getattr(getattr(inner, "forward", None), "schema", None)  # TorchScript's own: its argument names
            params = {a.name: a for a in schema.arguments} if schema is not None else {}  # type: ignore[assignment]
        self.takes_mask = "attention_mask" in params  # its signature has one
        # ... with no default (a positional `attention_mask`): every call must pass one
        self.mask_required = self.takes_mask and _no_default(params["attention_mask"])
        self.mask_mode: str | None = "long" if self.takes_mask else None  # how it reads (set by the probe)
        self.sequence_first = False  # the model reads ids (T, B) (set by the probe or stated)
        self.head: Head | None = None  # its output -> the adapters' logits (None: as it is)
        self._override: torch.Tensor | None = None

    @property
    def passes_mask(self) -> bool:
        """Return True when padded rows are given to the model with their attention mask."""
        return self.takes_mask and self.mask_mode is not None

    def embedding_module(self) -> nn.Module:
        """Return the model's own token embedding module (the one the forward hook replaces)."""
        return dict(self.inner.named_modules())[self.embedding_name]

    def get_input_embeddings(self) -> nn.Module:
        """Return the token embedding lookup (its output is what IG attributes): the model's module, or a
        per-token float32 view of it for an nn.EmbeddingBag or an fp16 / bf16 model."""
        m = self.embedding_module()
        weight = getattr(m, "weight", None)
        if isinstance(m, nn.EmbeddingBag) or (isinstance(weight, torch.Tensor) and weight.dtype in (torch.float16, torch.bfloat16)):
            return TokenLookup(m)
        return m

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
        logits_to_keep: int = 0,
        **_: Any,
    ) -> OwnOutput:
        """Return the logits (classifier (B, C); causal LM (B, T or logits_to_keep, V)), and attentions if asked."""
        if input_ids is None:
            if inputs_embeds is None:
                raise InputError("a forward needs input_ids or inputs_embeds")
            b, t = inputs_embeds.shape[:2]
            input_ids = torch.full((b, t), self.filler_id, dtype=torch.long, device=inputs_embeds.device)
        if inputs_embeds is None:
            input_ids, attention_mask = self._fill_empty(input_ids, attention_mask)
        if output_attentions:
            return self._with_attention(input_ids, inputs_embeds, attention_mask)
        if attention_mask is not None and not self.passes_mask and not bool(attention_mask.bool().all()):
            return OwnOutput(self._unpadded(input_ids, inputs_embeds, attention_mask, logits_to_keep))
        return OwnOutput(self._logits(input_ids, inputs_embeds, attention_mask, logits_to_keep))

    def _fill_empty(self, ids: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Give a row with no tokens (every word dropped, no special token kept) one pad token.

        Such a row is "no text"; a model without special tokens would attend over nothing
        (NaN). The pad token stands for it, as the start-of-text token does for a causal LM.
        """
        b, t = ids.shape
        empty = torch.ones(b, dtype=torch.bool, device=ids.device) if t == 0 else (
            ~mask.bool().any(-1) if mask is not None else torch.zeros(b, dtype=torch.bool, device=ids.device)
        )
        if not bool(empty.any()):
            return ids, mask
        if self.empty_id is None:
            raise InputError(
                "a row with no tokens reached the model (every word removed, no special token kept) and the "
                "tokenizer has no pad, unk or mask token to stand for it: give one in special_tokens"
            )
        if t == 0:
            ids, mask = ids.new_full((b, 1), self.empty_id), ids.new_ones((b, 1))
            return ids, mask
        assert mask is not None
        ids, mask = ids.clone(), mask.clone()
        ids[empty, 0], mask[empty, 0] = self.empty_id, 1  # position 0, as an unpadded row has it
        return ids, mask

    # ---- one forward, and the contract ------------------------------------------------------
    def _call(self, ids: torch.Tensor, embeds: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        """Return the adapters' logits for ids (B, T) (`embeds` replace the token embeddings): the
        inner model's output read through its head."""
        out = self.raw(ids, embeds, mask)
        return out if self.head is None else self.head(out)

    def raw(self, ids: torch.Tensor, embeds: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return the inner model's own output tensor for ids (B, T), in (B, ...) order, before its head is read."""
        kwargs = {"attention_mask": self._mask_for_model(mask)} if mask is not None and self.passes_mask else {}
        if not kwargs and self.mask_required:  # a mask it cannot go without: every token kept
            full = torch.ones_like(ids)
            kwargs = {"attention_mask": self._mask_for_model(full) if self.mask_mode else full}
        x = ids.t().contiguous() if self.sequence_first else ids  # a standard tensor, as the model's own (T, B) input is
        if embeds is None:
            return self._batch_first(logits_of(self.inner(x, **kwargs)))
        handle = self.embedding_module().register_forward_hook(self._replace)
        self._override = embeds
        try:
            return self._batch_first(logits_of(self.inner(x, **kwargs)))
        finally:
            handle.remove()
            self._override = None

    def _mask_for_model(self, mask: torch.Tensor) -> torch.Tensor:
        """Return the attention mask (B, T; 1 = token) as the model reads it (see mask_mode)."""
        if self.mask_mode == "bool":
            return mask.bool()
        if self.mask_mode == "inverted":
            return ~mask.bool()
        return mask

    def _batch_first(self, out: torch.Tensor) -> torch.Tensor:
        """Return a sequence-first causal LM's (T, B, V) output as (B, T, V); anything else as it is."""
        return out.transpose(0, 1) if self.sequence_first and out.dim() == 3 else out

    def _replace(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: hand back the given input embeddings (B, T, D) instead of the looked-up ones."""
        given = self._override
        assert given is not None  # set by _call around the forward that runs this hook
        if self.sequence_first:
            given = given.transpose(0, 1).contiguous()  # (T, B, D), laid out as the model's own lookup gives it
        if isinstance(module, nn.EmbeddingBag) and given.dim() == 3 and output.dim() == 2:
            given = _bag(given, module.mode)  # (B, D): the bag of the given token embeddings
        if tuple(output.shape) != tuple(given.shape):
            raise CheckpointError(
                f"the embedding module {self.embedding_name!r} returned {tuple(output.shape)} but the "
                f"input embeddings are {tuple(given.shape)}: name the token embedding with 'embeddings'"
            )
        return given.to(output.dtype)

    def _logits(self, ids: torch.Tensor, embeds: torch.Tensor | None, mask: torch.Tensor | None, keep: int) -> torch.Tensor:
        """Return the contract-checked logits of unpadded (or mask-taking) rows."""
        out = self._call(ids, embeds, mask)
        b, t = ids.shape
        if self.family == "text-classifier":
            if out.dim() != 2 or out.shape[0] != b:
                raise CheckpointError(
                    f"a text classifier must return logits (batch, classes) = ({b}, C); got {tuple(out.shape)} for input_ids {(b, t)}"
                )
            return out
        if out.dim() != 3 or out.shape[0] != b or out.shape[1] not in (t, 1):
            raise CheckpointError(
                f"a causal LM must return logits (batch, T, vocab) or (batch, 1, vocab) = ({b}, {t} or 1, V); "
                f"got {tuple(out.shape)} for input_ids {(b, t)}"
            )
        want = min(keep, t) if keep else t
        if out.shape[1] == t:
            return out[:, t - want :]
        if want == 1:
            return out
        # Last position only: one forward per shorter prefix gives the earlier positions.
        cols = [
            self._call(ids[:, : j + 1], None if embeds is None else embeds[:, : j + 1], None if mask is None else mask[:, : j + 1])[:, -1:]
            for j in range(t - want, t - 1)
        ]
        return torch.cat([*cols, out], dim=1)

    def _unpadded(self, ids: torch.Tensor, embeds: torch.Tensor | None, mask: torch.Tensor, keep: int) -> torch.Tensor:
        """Forward each row without its padding (rows of one length together); padded positions get 0."""
        b, t = ids.shape
        rows = [torch.nonzero(mask[i].bool()).flatten() for i in range(b)]
        groups: dict[int, list[int]] = {}
        for i, pos in enumerate(rows):
            groups.setdefault(len(pos), []).append(i)
        parts: dict[int, torch.Tensor] = {}
        for n, members in groups.items():
            if n == 0:
                raise InputError("a row of the batch has no tokens under its attention mask")
            sub_ids = torch.stack([ids[i, rows[i]] for i in members])
            sub_emb = None if embeds is None else torch.stack([embeds[i, rows[i]] for i in members])
            # Left padding keeps the last positions last: only those logits are needed.
            tail = keep and all(int(rows[i][-1]) == t - 1 and bool((rows[i][-keep:] == torch.arange(t - keep, t, device=ids.device)).all()) for i in members)
            out = self._logits(sub_ids, sub_emb, None, keep if tail and keep <= n else 0)
            for k, i in enumerate(members):
                parts[i] = out[k]
        if self.family == "text-classifier":
            return torch.stack([parts[i] for i in range(b)])
        vocab = next(iter(parts.values())).shape[-1]
        full = next(iter(parts.values())).new_zeros((b, t, vocab))
        for i in range(b):
            got = parts[i]
            if got.shape[0] == len(rows[i]):
                full[i, rows[i]] = got
            else:  # only the last positions were computed
                full[i, t - got.shape[0] :] = got
        return full[:, t - keep :] if keep else full

    # ---- attention ----------------------------------------------------------------------------
    def _with_attention(self, ids: torch.Tensor, embeds: torch.Tensor | None, mask: torch.Tensor | None) -> OwnOutput:
        """Return logits and attention maps (per layer (B, H, T, T)) recorded in one capture pass."""
        if mask is not None and not self.passes_mask and not bool(mask.bool().all()):
            raise InputError("attention maps are captured for one unpadded row at a time")
        capture = AttentionCapture(self.inner, self.attention_probs)
        out, full = capture.run(lambda: self._call(ids, embeds, mask))
        if not full:
            raise InputError(
                "this model does not expose its attention: it uses no nn.MultiheadAttention, "
                "F.scaled_dot_product_attention or square softmax over its last axis; name the module that outputs "
                "the probabilities (B, heads, T, T) with 'attention_probs'"
            )
        t = ids.shape[1]
        if self.family == "causal-lm" and out.dim() == 3 and out.shape[1] == 1 and t > 1:
            cols = []
            replay = capture.replayable()
            for j in range(t - 1):  # prefix forwards read slices of the full pass's maps
                with capture.recording(replay=replay):
                    cols.append(self._call(ids[:, : j + 1], None if embeds is None else embeds[:, : j + 1], None)[:, -1:])
            out = torch.cat([*cols, out], dim=1)
        elif self.family == "causal-lm":
            out = self._logits(ids, embeds, mask, 0) if out.shape[1] != t else out
        # A model may add positions of its own inside forward (a learnt [CLS] prepended, as ViT
        # and many course encoders do): every layer then attends over T + k positions, the first k
        # its own (text.py names them); anything else is not attention over this input.
        k = full[0].shape[-1] - t if full and full[0].dim() == 4 else -1
        for a in full:
            if a.dim() != 4 or k < 0 or a.shape[-1] != t + k or a.shape[-2] != t + k:
                raise InputError(f"captured attention of shape {tuple(a.shape)}; expected (batch, heads, {t}, {t}) "
                                 f"(or {t} + k square, k positions the model adds in front)")
        return OwnOutput(out, tuple(full))


def _bag(embeds: torch.Tensor, mode: str) -> torch.Tensor:
    """Return an nn.EmbeddingBag's reduction (mean, sum or max over T) of (B, T, D) token embeddings."""
    if mode == "sum":
        return embeds.sum(1)
    if mode == "max":
        return embeds.max(1).values
    return embeds.mean(1)


def _no_default(param: Any) -> bool:
    """Return True when a forward's parameter (inspect's, or a TorchScript schema argument) has no default."""
    if isinstance(param, inspect.Parameter):
        return param.default is inspect.Parameter.empty
    return getattr(param, "default_value", None) is None
