"""Causal LM decoding: greedy generation (KV-cached) and the prefix scorer with its cache."""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np
import torch

from ..execution.runner import Runner

from .lm_sequence import Generation


class PrefixScorer:
    """Scores token rows followed by a continuation tail, batched, left-padded and cached."""

    def __init__(self, model: torch.nn.Module, runner: Runner, pad_id: int, start_id: int | None) -> None:
        self.model = model
        self.runner = runner
        self.pad_id = pad_id
        self.start_id = start_id  # stands in for an empty context (every word dropped)
        params = inspect.signature(model.forward).parameters
        # Only the answering positions' logits are needed (renamed across transformers versions).
        self.keep_arg = next((a for a in ("logits_to_keep", "num_logits_to_keep") if a in params), None)
        self.positions = "position_ids" in params

    def head(self, ids: Sequence[int] | np.ndarray) -> tuple[int, ...]:
        """Return a context as scored: an empty one becomes the start-of-text token."""
        if len(ids) == 0 and self.start_id is not None:
            return (self.start_id,)
        return tuple(int(i) for i in ids)

    def entries(self, gen: Generation, heads: Sequence[tuple[int, ...]], step: int, need: int) -> np.ndarray:
        """Return (B, need, K+1) logits at the continuation's K distinct ids + logsumexp.

        Entry j of head h is the next-token distribution after h + continuation[step:step+j].
        Missing heads are forwarded with the whole remaining continuation, which fills the
        cache for every later step at the cost of a few more tokens per row.
        """
        cont = gen.continuation
        tail = tuple(cont[step:-1])  # the last token predicts nothing we explain
        width = len(cont) - step
        out = np.empty((len(heads), need, len(gen.columns) + 1), dtype=np.float32)
        missing: dict[tuple[int, ...], list[int]] = {}
        for b, h in enumerate(heads):
            hit = [gen.cache.get(h + tail[:j]) for j in range(need)]
            if all(v is not None for v in hit):
                out[b] = np.stack(hit)  # type: ignore[arg-type]
            else:
                missing.setdefault(h, []).append(b)
        if missing:
            rows = [h + tail for h in missing]
            cols = torch.tensor(sorted(gen.columns, key=gen.columns.__getitem__), device=self.runner.device)
            # rows of other inputs share a call only when they ask for the same positions and columns
            share = ("lm-prefix", width, tuple(cols.tolist()))
            vals = self.runner.map(rows, lambda batch: self.forward(batch, width, cols), key=len, share=share).numpy()
            for (h, where), v in zip(missing.items(), vals):
                for j in range(width):
                    gen.cache[h + tail[:j]] = v[j]
                out[where] = v[:need]
        return out

    def forward(self, rows: Sequence[Sequence[int]], width: int, cols: torch.Tensor) -> torch.Tensor:
        """Return (B, width, K+1): the last `width` positions' logits at `cols` and logsumexp."""
        logits = self.logits(rows, width).float()  # (B, width, V)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        return torch.cat([logits[..., cols], lse], dim=-1)

    def logits(self, rows: Sequence[Sequence[int]], width: int) -> torch.Tensor:
        """Return (B, width, V) logits of the last `width` positions of left-padded rows."""
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, longest - len(r) :] = torch.as_tensor(list(r), dtype=torch.long)
            mask[i, longest - len(r) :] = 1
        # Left padding puts every row's answers in the same last positions, so only those
        # logits are computed; position ids restart at each row's first real token, and the
        # mask hides the padding, so a row's answer does not depend on its batch.
        kwargs: dict[str, Any] = {"attention_mask": mask.to(self.runner.device)}
        if self.positions:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(self.runner.device)
        if self.keep_arg:
            kwargs[self.keep_arg] = width
        out = self.model(input_ids=ids.to(self.runner.device), **kwargs)
        return out.logits[:, -width:]

    def embeds_logits(self, embeds: torch.Tensor, width: int) -> torch.Tensor:
        """Return (B, width, V) logits of the last `width` positions for unpadded input embeddings."""
        kwargs: dict[str, Any] = {self.keep_arg: width} if self.keep_arg else {}
        return self.model(inputs_embeds=embeds, **kwargs).logits[:, -width:]


def greedy(model: torch.nn.Module, runner: Runner, ids: Sequence[int], n: int, stop: set[int]) -> list[int]:
    """Return up to n greedily generated token ids (stopping after an end-of-text id), KV-cached."""
    params = inspect.signature(model.forward).parameters
    cache_arg = next((a for a in ("cache", "past_key_values") if a in params), None)  # renamed in transformers 5.x
    new: list[int] = []
    x = torch.tensor([list(ids)], dtype=torch.long, device=runner.device)
    past = None
    with runner.context():
        for _ in range(n):
            kwargs: dict[str, Any] = {"use_cache": cache_arg is not None}
            if past is not None:
                kwargs[cache_arg] = past  # type: ignore[index]
            out = model(input_ids=x, **kwargs)
            runner.count(1)
            nxt = int(out.logits[0, -1].argmax())
            new.append(nxt)
            if nxt in stop:
                break
            past = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            step = torch.tensor([[nxt]], dtype=torch.long, device=runner.device)
            x = step if past is not None else torch.cat([x, step], dim=1)  # no cache: full re-forward
    return new
