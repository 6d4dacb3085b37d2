"""A small hand-written vision transformer, the kind a course builds: Conv2d patches, a class token, pre-norm blocks.

Attention is either `nn.MultiheadAttention` (`attention="mha"`) or written out with
`F.scaled_dot_product_attention` (`attention="sdpa"`); `registers` adds learnt tokens after the
class token (Darcet et al. 2023, arXiv 2309.16588); `pool="mean"` drops the class token and
classifies the mean of the patch tokens instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention written with F.scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, dim: int, heads: int, attention: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn: nn.Module = nn.MultiheadAttention(dim, heads, batch_first=True) if attention == "mha" else SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        if isinstance(self.attn, nn.MultiheadAttention):
            a = self.attn(h, h, h, need_weights=False)[0]
        else:
            a = self.attn(h)
        x = x + a
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """Patch embedding (Conv2d, kernel = stride = patch), class token (+ registers), position table, blocks, linear head."""

    def __init__(
        self,
        image_size: int = 32,
        patch: int = 4,
        in_channels: int = 1,
        num_classes: int = 2,
        dim: int = 32,
        depth: int = 2,
        heads: int = 4,
        attention: str = "mha",
        registers: int = 0,
        pool: str = "cls",
    ) -> None:
        super().__init__()
        if attention not in ("mha", "sdpa") or pool not in ("cls", "mean"):
            raise ValueError(f"attention is 'mha' or 'sdpa' (got {attention!r}); pool is 'cls' or 'mean' (got {pool!r})")
        self.pool = pool
        n = (image_size // patch) ** 2
        extra = (1 if pool == "cls" else 0) + registers
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.registers = nn.Parameter(torch.zeros(1, registers, dim)) if registers else None
        self.pos_embed = nn.Parameter(torch.randn(1, extra + n, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, attention) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.n_extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (B, num_classes) for images (B, C, H, W)."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D) patches in row-major order
        b = x.shape[0]
        first = [t.expand(b, -1, -1) for t in (self.cls_token, self.registers) if t is not None]
        x = torch.cat([*first, x], dim=1) + self.pos_embed  # (B, extra + N, D)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        pooled = x[:, 0] if self.pool == "cls" else x[:, self.n_extra :].mean(1)
        return self.head(pooled)
