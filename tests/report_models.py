"""A text classifier the report tests train in seconds to real-model noise levels (not the planted toy).

A planted model that only ever saw one sentiment word per sentence answers "neutral" with p 0.9999
and gives every other word a score of 1e-6: a report looks honest on it for free. A real
pretrained classifier (MiniLM on a neutral sentence: p 0.984, its largest word score 0.01-0.02 in
probability) does not. This one is trained, in-process and seeded, on sentences whose everyday
words lean a little one way (a neutral sentence's target gives a tenth of its probability to the
way its words lean, as real text is never perfectly neutral), with removal-style masking, so that
a neutral sentence gets p(neutral) about 0.9 and word scores of about 0.01, while "great" or
"awful" decide their sentences (scores about 0.9).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from conftest import FILLER, bert_vocab

POSITIVE, NEGATIVE = ("great", "good"), ("awful", "bad")


def _sentence(rng: random.Random, lean: dict[str, float]) -> tuple[str, list[float]]:
    """Return (text, target probabilities of negative, neutral, positive).

    A sentence without a cue word is neutral, with a little of the way its words lean: 10% of it
    goes to positive or negative by the sigmoid of their summed lean (real text is never perfectly
    neutral), which is what gives its words scores of about 0.01.
    """
    n = rng.randint(4, 12)
    words = [rng.choice(FILLER) for _ in range(n)]
    k = rng.random()
    cue = None
    if k >= 1 / 3:
        cue = rng.choice(POSITIVE if k < 2 / 3 else NEGATIVE)
        words.insert(rng.randrange(n + 1), cue)
    if rng.random() < 0.3:  # removal means absence: masked words, and a masked cue is no cue
        rate = rng.uniform(0, 0.6)
        words = ["[MASK]" if rng.random() < rate else w for w in words]
        cue = next((w for w in words if w in POSITIVE + NEGATIVE), None)
    if cue is not None:
        return " ".join(words), [0.98, 0.01, 0.01] if cue in NEGATIVE else [0.01, 0.01, 0.98]
    pull = sum(lean.get(w, 0.0) for w in words) / max(1, len(words)) ** 0.5
    up = 0.1 / (1 + np.exp(-3 * pull))
    return " ".join(words), [0.1 - up, 0.9, up]


def train_real_noise_classifier(folder: Path, steps: int = 600, seed: int = 0) -> Path:
    """Train the classifier into `folder` (an HF folder: negative, neutral, positive) and return it."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    if (folder / "trained").exists():
        return folder
    tok = BertTokenizerFast(vocab=bert_vocab())
    torch.manual_seed(seed)
    labels = ("negative", "neutral", "positive")
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=128,  # room for a long review (the tests' has 76 words)
                     num_labels=3, id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)})
    model = BertForSequenceClassification(cfg)
    rng = random.Random(seed)
    lean = {w: rng.gauss(0, 1) for w in FILLER}
    data = [_sentence(rng, lean) for _ in range(steps * 32)]
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()  # soft targets: probabilities
    model.train()
    for step in range(steps):
        batch = data[step * 32 : (step + 1) * 32]
        enc = tok([t for t, _ in batch], padding=True, return_tensors="pt")
        loss = loss_fn(model(**enc).logits, torch.tensor([y for _, y in batch], dtype=torch.float32))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "trained").write_text(f"{steps} steps, final loss {loss.item():.3f}\n")
    return folder
