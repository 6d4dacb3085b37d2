"""Train the bundled planted-truth sentiment classifier (`examples/models/sentiment-bert/`).

Usage: python examples/train_text_classifier.py [--out DIR]

A tiny BertForSequenceClassification with a hand-written WordPiece vocabulary. The planted
cause is the one sentiment word of a sentence; removing it ([MASK], [UNK], [PAD] or dropped)
must give "neutral". Prints held-out accuracy and the removal flip rates, then writes a Hugging
Face folder (config, weights, tokenizer) that loads offline with the Auto classes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
# transformers 5 names the (fast) tokenizer BertTokenizer and keeps BertTokenizerFast as an alias.
from transformers import BertConfig, BertForSequenceClassification
from transformers import BertTokenizerFast  # type: ignore[attr-defined]

from planted_data import (NEGATIVE_WORDS, POSITIVE_WORDS, SENTIMENT_LABELS, SENTIMENT_PIECES,
                          TEXT_FILLER, remove_word, seed_everything, sentiment_examples)

SEED = 0
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary() -> list[str]:
    """Return the hand-written WordPiece vocabulary: specials, whole words, then pieces."""
    whole = sorted(set(TEXT_FILLER) | set(POSITIVE_WORDS + NEGATIVE_WORDS) - set(SENTIMENT_PIECES))
    pieces = sorted({p for ps in SENTIMENT_PIECES.values() for p in ps})
    return SPECIALS + whole + pieces


def build_tokenizer(folder: Path) -> BertTokenizerFast:
    """Write vocab.txt into folder, build the tokenizer from it and check how words split."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocabulary()) + "\n")
    vocab = {tok: i for i, tok in enumerate((folder / "vocab.txt").read_text().split("\n")[:-1])}
    tok = BertTokenizerFast(vocab=vocab, model_max_length=128)
    # The planted truth is only clean if filler words are single pieces and never pieces of a
    # sentiment word, and if each split sentiment word splits exactly as SENTIMENT_PIECES says.
    for word in TEXT_FILLER + POSITIVE_WORDS + NEGATIVE_WORDS:
        assert tok.tokenize(word) == SENTIMENT_PIECES.get(word, [word]), word
    assert not {p for ps in SENTIMENT_PIECES.values() for p in ps} & set(TEXT_FILLER)
    assert tok.tokenize("a [MASK] [UNK] [PAD] the") == ["a", "[MASK]", "[UNK]", "[PAD]", "the"]
    return tok


@torch.inference_mode()
def predict(model: BertForSequenceClassification, tok: BertTokenizerFast,
            texts: list[str]) -> list[str]:
    """Return the predicted label name for each text."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(texts), 256):
        enc = tok(texts[i:i + 256], padding=True, return_tensors="pt")
        out += [SENTIMENT_LABELS[k] for k in model(**enc).logits.argmax(-1).tolist()]
    return out


def train(model: BertForSequenceClassification, tok: BertTokenizerFast,
          data: list[tuple[str, str, str | None]], epochs: int) -> None:
    """Fine-tune from scratch with AdamW and linear warm-up/decay, batch 64."""
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    steps = epochs * ((len(data) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps,
                                                pct_start=0.1, anneal_strategy="linear")
    labels = torch.tensor([SENTIMENT_LABELS.index(label) for _, label, _ in data])
    for epoch in range(epochs):
        model.train()
        order, total = torch.randperm(len(data)).tolist(), 0.0
        for i in range(0, len(data), 64):
            batch = order[i:i + 64]
            enc = tok([data[j][0] for j in batch], padding=True, return_tensors="pt")
            loss = model(**enc, labels=labels[batch]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}  loss {total / len(data):.4f}", flush=True)


def main() -> None:
    """Train, check the quality gates, and write the checkpoint folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "models/sentiment-bert")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    seed_everything(SEED)
    start = time.perf_counter()

    tok = build_tokenizer(args.out)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
        id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={name: i for i, name in enumerate(SENTIMENT_LABELS)})
    model = BertForSequenceClassification(config)
    train(model, tok, sentiment_examples(30000, seed=SEED, split="train"), args.epochs)
    print(f"training took {time.perf_counter() - start:.1f}s")

    heldout = sentiment_examples(3000, seed=SEED, split="heldout")
    pred = predict(model, tok, [text for text, _, _ in heldout])
    acc = float(np.mean([p == label for p, (_, label, _) in zip(pred, heldout)]))
    print(f"held-out accuracy: {acc:.4f} on {len(heldout)} sentences")
    planted = [(text, word) for text, _, word in heldout if word is not None]
    gates = {"accuracy": acc}
    for how in ("[MASK]", None, "[UNK]", "[PAD]"):
        pred = predict(model, tok, [remove_word(text, word, how) for text, word in planted])
        gates[str(how)] = rate = float(np.mean([p == "neutral" for p in pred]))
        print(f"planted word {'dropped' if how is None else 'replaced by ' + how}: "
              f"neutral for {rate:.4f} of {len(planted)}")

    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"wrote {args.out}")
    if acc < 0.97 or gates["[MASK]"] < 0.95 or gates["None"] < 0.95:
        sys.exit(f"quality gate failed: {gates}")


if __name__ == "__main__":
    main()
