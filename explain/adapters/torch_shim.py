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

Input embeddings replace the output of the token embedding module (a forward hook), so the
ids the model sees beside them are a filler id: a model must take its padding from
`attention_mask`, not from the values of the ids. A model whose forward has no
`attention_mask` never sees padding: rows are forwarded without it, grouped by length.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import CheckpointError, InputError
from .attention_capture import AttentionCapture

FAMILIES = ("text-classifier", "causal-lm")


@dataclass
class OwnOutput:
    """What the adapters read from a forward: logits and, when asked for, attention maps."""

    logits: torch.Tensor
    attentions: tuple[torch.Tensor, ...] | None = None


def logits_of(raw: Any) -> torch.Tensor:
    """Return the logits tensor of a forward's return value (tensor, tuple/list, dict or object)."""
    if isinstance(raw, torch.Tensor):
        return raw
    if isinstance(raw, Mapping) and isinstance(raw.get("logits"), torch.Tensor):
        return raw["logits"]
    if isinstance(getattr(raw, "logits", None), torch.Tensor):
        return raw.logits
    if isinstance(raw, (tuple, list)) and raw and isinstance(raw[0], torch.Tensor):
        return raw[0]
    raise CheckpointError(
        f"the model's forward returned a {type(raw).__name__}: the forward contract asks for logits, "
        "a tuple whose first element is the logits, or a dict with 'logits'"
    )


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
        self.takes_mask = "attention_mask" in params
        self._override: torch.Tensor | None = None

    def get_input_embeddings(self) -> nn.Module:
        """Return the token embedding module (its output is what IG attributes)."""
        return dict(self.inner.named_modules())[self.embedding_name]

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
        if attention_mask is not None and not self.takes_mask and not bool(attention_mask.bool().all()):
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
        """Return the inner model's logits for ids (B, T); `embeds` replace the token embeddings."""
        kwargs = {"attention_mask": mask} if mask is not None and self.takes_mask else {}
        if embeds is None:
            return logits_of(self.inner(ids, **kwargs))
        handle = self.get_input_embeddings().register_forward_hook(self._replace)
        self._override = embeds
        try:
            return logits_of(self.inner(ids, **kwargs))
        finally:
            handle.remove()
            self._override = None

    def _replace(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: hand back the given input embeddings instead of the looked-up ones."""
        given = self._override
        assert given is not None  # set by _call around the forward that runs this hook
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
        if mask is not None and not self.takes_mask and not bool(mask.bool().all()):
            raise InputError("attention maps are captured for one unpadded row at a time")
        capture = AttentionCapture(self.inner, self.attention_probs)
        with capture.recording() as maps:
            out = self._call(ids, embeds, mask)
        if not maps:
            raise InputError(
                "this model does not expose its attention: it uses neither nn.MultiheadAttention nor "
                "F.scaled_dot_product_attention; name the module that outputs the probabilities with 'attention_probs'"
            )
        full = list(maps)
        t = ids.shape[1]
        if self.family == "causal-lm" and out.dim() == 3 and out.shape[1] == 1 and t > 1:
            cols = []
            for j in range(t - 1):  # prefix forwards read slices of the full pass's maps
                with capture.recording(replay=full):
                    cols.append(self._call(ids[:, : j + 1], None if embeds is None else embeds[:, : j + 1], None)[:, -1:])
            out = torch.cat([*cols, out], dim=1)
        elif self.family == "causal-lm":
            out = self._logits(ids, embeds, mask, 0) if out.shape[1] != t else out
        for a in full:
            if a.dim() != 4 or a.shape[-1] != t or a.shape[-2] != t:
                raise InputError(f"captured attention of shape {tuple(a.shape)}; expected (batch, heads, {t}, {t})")
        return OwnOutput(out, tuple(full))
