"""Attention for image transformers: class-token maps per layer and head, rollout and relevance over patches.

The maths is the text attention's (explain.methods.attention_maths: `rollout`, `relevance_excess`);
only what is read differs. The head's rows (explain.adapters.patch_tokens: the class token, the
class and distillation tokens, the mean of the patch tokens, or Dinov2's class token plus the
patch mean) weigh:

- the attention each layer and head pays from those rows to every patch (the "class token's
  attention", or the mean over patch queries when the head reads no class token);
- attention rollout (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928): those rows of
  the rolled-out matrix, as jacobgil/vit-explain reads the class token's row;
- gradient-weighted relevance (Chefer, Gur & Wolf 2021, https://arxiv.org/abs/2103.15679):
  those rows of R - I for the explained class's logit (the paper's code differentiates the
  logit), the class-specific map and the explanation's scores.

Special tokens (class, distillation, registers) are dropped from the maps, which are drawn back
onto the image from the patch grid: each patch's value at its centre, bilinear in between, at
the input image's own resolution. Swin-style windowed attention is refused in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..adapters.base import Adapter, Example, select_output
from ..adapters.patch_tokens import PatchLayout, layout
from ..adapters.patch_views import attention_pass
from ..results.explanation import Explanation, Target
from .attention_maths import relevance_excess, rollout
from .base import Cost, Method

OUTPUT = "logit"  # what relevance differentiates for images, as the paper's code does


def capture(adapter: Adapter, example: Example, target: Target) -> tuple[torch.Tensor, torch.Tensor, PatchLayout, float]:
    """Return (attention (L, H, T, T), its gradient for the target's logit, the layout, the logit), float32 on the CPU."""
    x = adapter.pixels(example)  # type: ignore[attr-defined]  # image adapter only
    logits, maps = attention_pass(adapter, x)
    adapter.runner.count(1)
    out = select_output(logits, target.index, OUTPUT, adapter.head)[0]
    grads = torch.autograd.grad(out, maps)
    att = torch.stack([a.detach()[0].float().cpu() for a in maps])
    g = torch.stack([a.detach()[0].float().cpu() for a in grads])
    return att, g, layout(adapter, int(att.shape[-1])), float(out.detach())


def explain_image(method: Method, adapter: Adapter, example: Example, target: Target, max_values: int, settings: dict[str, Any]) -> Explanation:
    """Return the relevance map (H, W) at the image's resolution as scores; class-token maps, rollout and relevance per patch in extras."""
    with Cost(adapter) as cost:
        att, grads, lay, logit = adapter.runner.with_backoff(
            lambda _: capture(adapter, example, target), 1, what="the attention capture pass"
        )
        w = lay.answer()  # (T,) the head's rows
        token_relevance = w @ relevance_excess(att, grads)  # (T,): what the answer owes each token, no self-credit
        token_rollout = w @ rollout(att)  # (T,)
        answer = torch.einsum("t,lhts->lhs", w, att)  # (L, H, T): attention the head's rows pay each token
        n_layers, n_heads = att.shape[:2]
        all_heads = n_layers * n_heads * lay.grid[0] * lay.grid[1] <= max_values
        patch_relevance = lay.to_grid(token_relevance)
        # the patch grid covers the model's window: drawn there on the image (0 outside a crop)
        scores = adapter.window_to_image(example, patch_relevance)  # type: ignore[attr-defined]  # image adapter only
        n = len(lay.special)
        extras = {
            "patch_relevance": patch_relevance.numpy().astype(np.float32),  # (rows, cols)
            "patch_rollout": lay.to_grid(token_rollout).numpy().astype(np.float32),  # (rows, cols)
            # (L, H or 1, rows, cols): each layer and head's attention from the head's rows to every patch
            "patch_attention": lay.to_grid(answer if all_heads else answer.mean(1, keepdim=True)).numpy().astype(np.float32),
            "special_attention": answer[..., :n].numpy().astype(np.float32),  # (L, H, specials): kept off the maps, shown as numbers
            "token_relevance": token_relevance.numpy().astype(np.float32),  # (T,) special tokens first
            "tokens": list(lay.names()),
            "heads": "all" if all_heads else "mean",
            "grid": list(lay.grid),
            "patch_size": [round(lay.patch[0], 3), round(lay.patch[1], 3)],  # in the model's input pixels
            "model_input": list(lay.size),
            "special_tokens": list(lay.special),
            "dropped": lay.dropped(),
            "answer_rule": lay.rule,
            "answer_rows": [int(r) for r in lay.rows],
            "output": OUTPUT,
            "output_value": logit,
        }
    return method.result(
        adapter,
        example,
        target,
        cost,
        features=(),
        scores=scores,
        granularity="pixel",
        settings=settings,
        checks={},
        extras=extras,
    )
