"""Text classifiers written the way tutorials and courses write them (the zoo of issue 24).

Each takes `vocab_size` (arch_args) and token ids (B, T); weights are random and seeded by the tests.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class OneLogit(nn.Module):
    """The sentiment tutorial: mean of embeddings, `nn.Linear(d, 1)` trained with BCEWithLogitsLoss."""

    def __init__(self, vocab_size: int, d: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        self.fc = nn.Linear(d, 1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.embedding(input_ids)).mean(1)) * 3.0


class SqueezedLogit(OneLogit):
    """The same, returning `.squeeze()`: (B,) for a batch, a 0-d tensor for one row."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids).squeeze()


class SoftmaxOut(nn.Module):
    """`return F.softmax(self.fc(x), dim=-1)`: probabilities."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.fc(torch.tanh(self.embedding(input_ids)).mean(1)) * 4.0, dim=-1)


class LogSoftmaxOut(SoftmaxOut):
    """`return F.log_softmax(...)` (trained with NLLLoss): log-probabilities."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc(torch.tanh(self.embedding(input_ids)).mean(1)) * 4.0, dim=-1)


class PackedLSTM(nn.Module):
    """An LSTM over packed sequences (lengths from the attention mask), its last hidden state classified."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d, padding_idx=0)
        self.lstm = nn.LSTM(d, d, batch_first=True)
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        lengths = attention_mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(input_ids), lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.fc(h[-1])


class MeanPooled(nn.Module):
    """nn.TransformerEncoder (batch first), a head on the mean of the unmasked tokens."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 2, max_len: int = 32) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(max_len, d)
        layer = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.tok(input_ids) + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        keep = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        x = self.encoder(x, src_key_padding_mask=~keep)
        return self.head((x * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True))


class TransposesItself(nn.Module):
    """Takes (B, T) and transposes for a sequence-first nn.TransformerEncoder (batch_first=False), as older code does."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0), 1, enable_nested_tensor=False)
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.encoder(self.embedding(input_ids).transpose(0, 1))  # (T, B, d)
        return self.fc(x[0])


class SequenceFirst(nn.Module):
    """Takes (T, B) ids, as PyTorch's older text tutorials do: the input itself is sequence-first."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0), 1, enable_nested_tensor=False)
        self.fc = nn.Linear(d, classes)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(self.embedding(src)).mean(0))


class Bag(nn.Module):
    """torchtext's text-classification tutorial model: nn.EmbeddingBag (mean) then a linear layer."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, d, mode="mean")
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(input_ids)) * 4.0


class InvertedMask(nn.Module):
    """`attention_mask` passed on as PyTorch's src_key_padding_mask: True = padding."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        layer = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1)
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        pad = None if attention_mask is None else attention_mask.bool()
        return self.fc(self.encoder(self.embedding(input_ids), src_key_padding_mask=pad)[:, 0])


class LearnedCLS(nn.Module):
    """A learnt [CLS] vector prepended inside forward (ViT/BERT-course style), classified from position 0."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 2, max_len: int = 33) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, max_len, d) * 0.1)
        layer = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.encoder(x + self.pos[:, : x.shape[1]])
        return self.fc(x[:, 0])


class Head(nn.Module):
    """One head of self-attention, as in the "GPT from scratch" lecture (inline F.softmax, no mask here)."""

    def __init__(self, d: int, head_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(d, head_size, bias=False)
        self.query = nn.Linear(d, head_size, bias=False)
        self.value = nn.Linear(d, head_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, q = self.key(x), self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        wei = F.softmax(wei, dim=-1)
        return wei @ self.value(x)


class MultiHeadAttention(nn.Module):
    """Heads side by side, concatenated and projected."""

    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList([Head(d, d // n_head) for _ in range(n_head)])
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))


class InlineAttention(nn.Module):
    """An encoder of lecture-style Head / MultiHeadAttention blocks, classified from the first token."""

    def __init__(self, vocab_size: int, d: int = 16, n_head: int = 2, n_layer: int = 2, classes: int = 2, max_len: int = 32) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList([MultiHeadAttention(d, n_head) for _ in range(n_layer)])
        self.ln = nn.ModuleList([nn.LayerNorm(d) for _ in range(n_layer)])
        self.fc = nn.Linear(d, classes)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for sa, ln in zip(self.blocks, self.ln):
            x = x + sa(ln(x))
        return self.fc(x[:, 0])


class FrozenEmbeddings(nn.Module):
    """Pre-trained embeddings frozen with `.detach()`: no gradient reaches them."""

    def __init__(self, vocab_size: int, d: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d)
        self.fc = nn.Linear(d, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(input_ids).detach().mean(1))
