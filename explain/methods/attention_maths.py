"""The maths of attention explanations, shared by text (attention) and image patches (patch_attention).

- attention rollout (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928): per layer the
  head-mean attention mixed half and half with the identity (the residual stream) and
  row-normalised, multiplied through the layers, first layer rightmost;
- gradient-weighted relevance (Chefer, Gur & Wolf 2021, https://arxiv.org/abs/2103.15679,
  eqs. 5-6 for self-attention): R = I, then per layer R <- R + mean_h((dy/dA * A)^+) R.
"""

from __future__ import annotations

import torch


def rollout(att: torch.Tensor) -> torch.Tensor:
    """Return attention rollout (T, T) from (L, H, T, T) attention: residual-mixed head means."""
    eye = torch.eye(att.shape[-1], dtype=att.dtype, device=att.device)
    result = eye
    for layer in att:  # (H, T, T), first layer first
        a = 0.5 * layer.mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result


def relevance(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Return the relevance matrix (T, T) of arXiv 2103.15679 from attention and its gradients (L, H, T, T)."""
    return torch.eye(att.shape[-1], dtype=att.dtype, device=att.device) + relevance_excess(att, grads)


def relevance_excess(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Return relevance minus the identity (T, T): what each token owes the others, no self-credit.

    Kept as S = R - I throughout (R <- R + cam R is S <- S + cam + cam S), so a small excess on
    the diagonal is not lost to float32 rounding of 1 + x, as subtracting I at the end would.
    """
    s = torch.zeros(att.shape[-1], att.shape[-1], dtype=att.dtype, device=att.device)
    for a, g in zip(att, grads):
        cam = (g * a).clamp(min=0).mean(0)  # (T, T) head mean of the positive grad x attention
        s = s + cam + cam @ s
    return s
