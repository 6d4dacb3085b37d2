"""A BERT-like text classifier on nn.TransformerEncoder: mean-pooled over the unmasked tokens."""

from __future__ import annotations

import torch
from torch import nn


class EncoderClassifier(nn.Module):
    """Token + learnt position embeddings, nn.TransformerEncoder layers, a linear head on the mean token."""

    def __init__(self, vocab_size: int, num_classes: int, d_model: int = 32, nhead: int = 2, num_layers: int = 2, max_len: int = 64) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return logits (B, num_classes) for token ids (B, T); attention_mask (B, T) marks real tokens with 1."""
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tok_emb(input_ids) + self.pos_emb(pos)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        keep = attention_mask.bool()
        x = self.encoder(x, src_key_padding_mask=~keep)
        pooled = (x * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)
        return self.head(pooled)
