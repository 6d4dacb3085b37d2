"""A planted-truth text classifier for the budget benchmarks: several cue words of different strengths and an interaction.

No training: the model is its planted weights, so what matters is known. logit = the sum of
the kept tokens' weights (excellent +2.0, awful -1.6, charming +1.0, dull -0.6, good +0.35;
every filler word a small fixed weight, N(0, 0.06)) plus an interaction (brilliant and superb
together +1.5, on top of +0.2 each); two classes with logits (-s/2, s/2). A removed word
(replaced by [MASK], [UNK] or [PAD], or dropped) contributes nothing. Words come from the
bundled tokenizer's vocabulary, one token each. `with_body` adds a real-size transformer's
logits (random weights) so that a row costs what it costs there while the answer stays planted.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from planted_data import TEXT_FILLER  # noqa: E402

CUES = {"excellent": 2.0, "awful": -1.6, "charming": 1.0, "dull": -0.6, "good": 0.35}
PAIR = ("brilliant", "superb", 1.5, 0.2)  # together +1.5 on top of +0.2 each


class CueModel(torch.nn.Module):
    """The planted classifier over token ids (B, T) -> logits (B, 2); padding read from attention_mask."""

    def __init__(self, vocab: dict[str, int], seed: int = 0, body: torch.nn.Module | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.zeros(len(vocab))
        for word in TEXT_FILLER:
            if word in vocab:
                w[vocab[word]] = 0.06 * torch.randn((), generator=g)
        for word, weight in {**CUES, PAIR[0]: PAIR[3], PAIR[1]: PAIR[3]}.items():
            w[vocab[word]] = weight
        self.cue_weights = torch.nn.Embedding(len(vocab), 1, _weight=w[:, None].clone())  # an nn.Embedding: what the adapter looks for
        self.cue_weights.weight.requires_grad_(False)
        self.pair = (vocab[PAIR[0]], vocab[PAIR[1]])
        self.body = body  # e.g. a random BertForSequenceClassification: its cost, not its answer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        keep = torch.ones_like(input_ids, dtype=torch.float32) if attention_mask is None else attention_mask.float()
        s = (self.cue_weights(input_ids)[..., 0] * keep).sum(1)
        present = [((input_ids == t) & (keep > 0)).any(1) for t in self.pair]
        s = s + PAIR[2] * (present[0] & present[1]).float()
        logits = torch.stack([-s / 2, s / 2], -1)  # (B, 2)
        if self.body is not None:
            logits = logits + self.body(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        return logits


def cue_text(words: int, rng: random.Random, pair: bool | None = None) -> str:
    """Return a text of exactly `words` words: filler plus 3-5 cues (and the pair, in about half)."""
    cues = rng.sample(sorted(CUES), rng.randint(3, 5))
    if pair if pair is not None else rng.random() < 0.5:
        cues += list(PAIR[:2])
    text = [rng.choice(TEXT_FILLER) for _ in range(max(0, words - len(cues)))]
    for cue in cues:
        text.insert(rng.randint(0, len(text)), cue)
    return " ".join(text)


def cue_texts(n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
    """Return n texts of lo..hi words each (cues included)."""
    rng = random.Random(f"cues:{lo}:{hi}:{seed}")
    return [cue_text(rng.randint(lo, hi), rng) for _ in range(n)]


def adapter(device: str = "cpu", body: Any = None, tokenizer: Any = None) -> Any:
    """Return an explain adapter of the planted classifier (optionally over a real-size body)."""
    import explain
    from transformers import AutoTokenizer

    tok = tokenizer or AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1] / "examples" / "models" / "sentiment-bert")
    model = CueModel(tok.get_vocab(), body=body).eval()
    extra: dict[str, Any] = {"embeddings": "body.bert.embeddings.word_embeddings"} if body is not None else {}
    return explain.from_model(model, tok, family="text-classifier", labels=["negative", "positive"], device=device, **extra)
