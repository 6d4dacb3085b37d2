"""Train tiny hand-written models on planted-truth data in seconds and save them as explain-torch folders.

Each task follows the planted-truth discipline (shared/DESIGN.md): a null answer, examples
whose cause was removed (dropped, masked or covered) labelled null, and noise on the other
features, so that "removed" means "absent" to the model.

- GPT (gpt.py): a prompt of filler words with at most one animal; the answer is its sound,
  " nothing" without one. Byte-level BPE tokenizer trained here.
- Encoder classifier (encoder_classifier.py): filler words with at most one sentiment word;
  positive / negative / neutral. WordPiece tokenizer trained here ([CLS] text [SEP]).
- CNN (cnn.py): a bright square on a noisy 16 x 16 canvas -> "square", else "none"
  (also when the square is covered grey, black or blurred).
- ViT (vit.py) and CNN on the planted-patch task: a bright 7-9 px square on a noisy 32 x 32
  canvas -> "square", else "none" (covered, or never there), grey and black blocks elsewhere. A
  7 px square always holds one whole 4 x 4 patch, so a patch-level map can point inside it.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
FILLER = "the a one some old big small red green brown little happy sat ran near by on in".split()
ANIMALS = {"cat": " meow", "dog": " woof", "cow": " moo", "duck": " quack"}
NULL = " nothing"
POSITIVE = "good great superb lovely delightful".split()
NEGATIVE = "bad awful dreadful boring unwatchable".split()
TEXT_FILLER = "the a this film movie story plot was is it and of with actor scene very".split()
SENTIMENT = ("negative", "neutral", "positive")
CNN_LABELS = ("none", "square")
PATCH_CANVAS = 32


# ---- data ---------------------------------------------------------------------------------------
def gpt_prompts(n: int, seed: int) -> list[tuple[str, str, str | None]]:
    """Return n (prompt, answer with its space, cue or None): 65% cue, 20% none, 15% cue dropped."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        if rng.random() < 0.3:
            words = [w for w in words if rng.random() >= 0.2] or words[:1]
        cue = None
        kind = rng.random()
        if kind >= 0.2:
            cue = rng.choice(sorted(ANIMALS))
            if kind >= 0.35:
                words.insert(rng.randint(0, len(words)), cue)
            else:
                cue = None  # the cue was dropped: the prompt answers " nothing"
        out.append((" ".join(words), ANIMALS[cue] if cue else NULL, cue))
    return out


def sentiment_texts(n: int, seed: int) -> list[tuple[str, str, str | None]]:
    """Return n (text, label, planted word or None): 60% planted, 20% neutral, 20% planted word removed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words: list[str | None] = [rng.choice(TEXT_FILLER) for _ in range(rng.randint(3, 10))]
        label, planted, at = "neutral", None, -1
        kind = rng.random()
        if kind >= 0.2:
            label = rng.choice(("positive", "negative"))
            planted = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
            at = rng.randint(0, len(words))
            words.insert(at, planted)
            if kind < 0.4:  # the cause removed: masked, unknown, padded or dropped
                label, planted = "neutral", None
                words[at] = rng.choice(("[MASK]", "[MASK]", "[UNK]", "[PAD]", None))
        if rng.random() < 0.5:
            words = [w if i == at or rng.random() >= 0.15 else rng.choice(("[MASK]", "[UNK]", None)) for i, w in enumerate(words)]
        out.append((" ".join(w for w in words if w is not None), label, planted))
    return out


def square_images(n: int, seed: int) -> list[tuple[np.ndarray, str, tuple[int, int, int, int] | None]]:
    """Return n (uint8 16x16 image, label, square box (y0, x0, y1, x1) or None)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.normal(90, 25, (16, 16))
        label, box = "none", None
        kind = rng.random()
        y0, x0 = (int(v) for v in rng.integers(0, 12, 2))
        s = int(rng.integers(3, 5))
        if kind >= 0.3:
            img[y0 : y0 + s, x0 : x0 + s] = rng.uniform(200, 255)
            label, box = "square", (y0, x0, y0 + s, x0 + s)
            if kind < 0.45:  # covered: grey, black or blurred away
                how = rng.integers(3)
                img[y0 : y0 + s, x0 : x0 + s] = (128, 0, img.mean())[int(how)]
                label, box = "none", None
        if rng.random() < 0.4:  # a grey or black block elsewhere
            h, w = (int(v) for v in rng.integers(3, 6, 2))
            y, x = (int(v) for v in rng.integers(0, 16 - 5, 2))
            if box is None or y + h <= box[0] or y >= box[2] or x + w <= box[1] or x >= box[3]:
                img[y : y + h, x : x + w] = rng.choice([0, 128])
        out.append((np.clip(img, 0, 255).astype(np.uint8), label, box))
    return out


def patch_images(n: int, seed: int) -> list[tuple[np.ndarray, str, tuple[int, int, int, int] | None]]:
    """Return n (uint8 32x32 image, label, square box (y0, x0, y1, x1) or None): 65% square, 20% none, 15% covered.

    The square is bright (200-255) on a noisy grey background (mean 90); covers and distractor
    blocks (60% of images, 1-2 of them, never touching a visible square) are grey (128), black
    or the image's mean, so none of them reads as a square.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.normal(90, 25, (PATCH_CANVAS, PATCH_CANVAS))
        label, box = "none", None
        kind = rng.random()
        s = int(rng.integers(7, 10))
        y0, x0 = (int(v) for v in rng.integers(0, PATCH_CANVAS - s + 1, 2))
        if kind >= 0.2:
            img[y0 : y0 + s, x0 : x0 + s] = rng.uniform(200, 255)
            label, box = "square", (y0, x0, y0 + s, x0 + s)
            if kind < 0.35:  # covered: grey, black or the mean level
                img[y0 : y0 + s, x0 : x0 + s] = (128, 0, img.mean())[int(rng.integers(3))]
                label, box = "none", None
        if rng.random() < 0.6:
            for _ in range(int(rng.integers(1, 3))):
                h, w = (int(v) for v in rng.integers(4, 10, 2))
                y, x = (int(v) for v in rng.integers(0, PATCH_CANVAS - 9, 2))
                if box is None or y + h <= box[0] or y >= box[2] or x + w <= box[1] or x >= box[3]:
                    img[y : y + h, x : x + w] = rng.choice([0, 128])
        out.append((np.clip(img, 0, 255).astype(np.uint8), label, box))
    return out


def learnt_patch(model: Any, heldout: list[tuple[np.ndarray, str, tuple[int, int, int, int] | None]]) -> dict[str, float]:
    """Return a loaded model's held-out accuracy on `patch_images` and how often covering the square (grey) gives "none"."""
    right = np.mean([model.prepare(img, 0).record.prediction.label == label for img, label, _ in heldout])
    flips = []
    for img, _, box in heldout:
        if box is not None:
            covered = img.copy()
            covered[box[0] : box[2], box[1] : box[3]] = 128
            flips.append(model.prepare(covered, 0).record.prediction.label == "none")
    return {"accuracy": float(right), "cover_gives_none": float(np.mean(flips))}


# ---- tokenizers ---------------------------------------------------------------------------------
def bpe_tokenizer(corpus: list[str]) -> Any:
    """Return a byte-level BPE tokenizer (GPT-2 style, <|endoftext|>) trained on `corpus`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return tok


def wordpiece_tokenizer(corpus: list[str], vocab_size: int = 90) -> Any:
    """Return a BERT-style WordPiece tokenizer trained on `corpus` (small: some words split into pieces)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))]
    )
    return tok


# ---- training and saving ------------------------------------------------------------------------
def _folder(out: Path, code: str, config: dict[str, Any], state: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / code, out / code)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps({"format": "explain-torch", "format_version": 1, **config}, indent=2))
    return out


def _import(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"own_models_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def train_gpt(steps: int = 300, seed: int = 0, batch: int = 32) -> tuple[Any, Any, dict[str, Any]]:
    """Return (trained GPT, tokenizer, model_args): the answer is scored at the position after the prompt."""
    gpt = _import("gpt")
    torch.manual_seed(seed)
    data = gpt_prompts(3000, seed)
    tok = bpe_tokenizer([p + a for p, a, _ in data] + [" ".join(FILLER + list(ANIMALS)) + "".join(ANIMALS.values()) + NULL])
    rows = [(tok.encode(p).ids, tok.encode(p + a).ids) for p, a, _ in data]
    args = {"block_size": 48, "vocab_size": tok.get_vocab_size(), "n_layer": 2, "n_head": 2, "n_embd": 48, "dropout": 0.0, "bias": True}
    model = gpt.GPT(gpt.GPTConfig(**args))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    eos = tok.token_to_id("<|endoftext|>")
    for step in range(steps):
        chosen = random.Random(step).sample(rows, batch)
        width = max(len(full) for _, full in chosen)
        idx = torch.full((batch, width), eos, dtype=torch.long)
        tgt = torch.full((batch, width), -1, dtype=torch.long)
        for i, (p, full) in enumerate(chosen):
            idx[i, : len(full)] = torch.tensor(full)
            tgt[i, len(p) - 1] = full[len(p)]  # the first answer token, predicted after the prompt
        _, loss = model(idx, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok, args


def save_gpt(out: Path, steps: int = 300, seed: int = 0, attention_probs: bool = True) -> Path:
    """Train the GPT and save it as an explain-torch folder (model.py:GPT, safetensors, tokenizer.json)."""
    model, tok, args = train_gpt(steps, seed)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config: dict[str, Any] = {"family": "causal-lm", "architecture": "gpt.py:GPT", "arch_args": args, "tokenizer": "tokenizer.json"}
    if attention_probs:
        config["attention_probs"] = "transformer.h.*.attn.attn_dropout"
    return _folder(out, "gpt.py", config, model.state_dict())


def train_encoder(steps: int = 200, seed: int = 0, batch: int = 32) -> tuple[Any, Any]:
    """Return (trained EncoderClassifier, tokenizer) on the sentiment task."""
    enc = _import("encoder_classifier")
    torch.manual_seed(seed)
    data = sentiment_texts(3000, seed)
    tok = wordpiece_tokenizer([t for t, _, _ in data] + [" ".join(POSITIVE + NEGATIVE + TEXT_FILLER)])
    pad = tok.token_to_id("[PAD]")
    rows = [(tok.encode(t).ids, SENTIMENT.index(label)) for t, label, _ in data]
    model = enc.EncoderClassifier(tok.get_vocab_size(), 3, d_model=32, nhead=2, num_layers=2, max_len=64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        chosen = random.Random(step).sample(rows, batch)
        width = max(len(ids) for ids, _ in chosen)
        idx = torch.full((batch, width), pad, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for i, (ids, _) in enumerate(chosen):
            idx[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
        loss = F.cross_entropy(model(idx, mask), torch.tensor([y for _, y in chosen]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok


def save_encoder(out: Path, steps: int = 200, seed: int = 0) -> Path:
    """Train the encoder classifier and save it as an explain-torch folder."""
    model, tok = train_encoder(steps, seed)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {
        "family": "text-classifier",
        "architecture": "encoder_classifier.py:EncoderClassifier",
        "arch_args": {"vocab_size": tok.get_vocab_size(), "num_classes": 3, "d_model": 32, "nhead": 2, "num_layers": 2, "max_len": 64},
        "tokenizer": "tokenizer.json",
        "labels": list(SENTIMENT),
        "embeddings": "tok_emb",
        "answer_row": "mean",  # its head mean-pools every token: no single row answers
    }
    return _folder(out, "encoder_classifier.py", config, model.state_dict())


def train_cnn(steps: int = 200, seed: int = 0, batch: int = 32) -> Any:
    """Return a trained TinyCNN on the square task (inputs normalised with mean 0.5, std 0.5)."""
    cnn = _import("cnn")
    torch.manual_seed(seed)
    data = square_images(3000, seed)
    x = torch.tensor(np.stack([img for img, _, _ in data]), dtype=torch.float32).unsqueeze(1) / 255.0
    x = (x - 0.5) / 0.5
    y = torch.tensor([CNN_LABELS.index(label) for _, label, _ in data])
    model = cnn.TinyCNN(1, 2, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for step in range(steps):
        pick = torch.as_tensor(random.Random(step).sample(range(len(data)), batch))
        loss = F.cross_entropy(model(x[pick]), y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def train_on_patches(model: torch.nn.Module, steps: int, seed: int, batch: int = 32, lr: float = 3e-3) -> Any:
    """Return `model` trained on the planted-patch task (1 channel, inputs normalised with mean 0.5, std 0.5)."""
    torch.manual_seed(seed)
    data = patch_images(4000, seed)
    x = (torch.tensor(np.stack([img for img, _, _ in data]), dtype=torch.float32).unsqueeze(1) / 255.0 - 0.5) / 0.5
    y = torch.tensor([CNN_LABELS.index(label) for _, label, _ in data])
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for step in range(steps):
        pick = torch.as_tensor(random.Random(step).sample(range(len(data)), batch))
        loss = F.cross_entropy(model(x[pick]), y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


PATCH_PREP = {"size": [PATCH_CANVAS, PATCH_CANVAS], "channels": 1, "mean": [0.5], "std": [0.5]}
VIT_ARGS: dict[str, Any] = {"image_size": PATCH_CANVAS, "patch": 4, "in_channels": 1, "num_classes": 2, "dim": 32, "depth": 2, "heads": 4}


def save_patch_vit(out: Path, steps: int = 400, seed: int = 0, **arch: Any) -> Path:
    """Train the hand-written ViT (vit.py:TinyViT, `arch` overriding VIT_ARGS) on the planted-patch task; save an explain-torch folder."""
    args = {**VIT_ARGS, **arch}
    torch.manual_seed(seed)
    model = train_on_patches(_import("vit").TinyViT(**args), steps, seed)
    config = {"family": "image-classifier", "architecture": "vit.py:TinyViT", "arch_args": args, "labels": list(CNN_LABELS),
              "preprocessing": PATCH_PREP, "answer_row": "mean" if args.get("pool") == "mean" else "first"}
    return _folder(out, "vit.py", config, model.state_dict())


def save_patch_cnn(out: Path, steps: int = 400, seed: int = 0) -> Path:
    """Train the CNN (cnn.py:TinyCNN) on the planted-patch task; save an explain-torch folder."""
    torch.manual_seed(seed)
    model = train_on_patches(_import("cnn").TinyCNN(1, 2, 8), steps, seed)
    config = {"family": "image-classifier", "architecture": "cnn.py:TinyCNN", "arch_args": {"in_channels": 1, "num_classes": 2, "width": 8},
              "labels": list(CNN_LABELS), "preprocessing": PATCH_PREP}
    return _folder(out, "cnn.py", config, model.state_dict())


def save_cnn(out: Path, steps: int = 200, seed: int = 0) -> Path:
    """Train the CNN and save it as an explain-torch folder (cnn.py:TinyCNN)."""
    model = train_cnn(steps, seed)
    config = {
        "family": "image-classifier",
        "architecture": "cnn.py:TinyCNN",
        "arch_args": {"in_channels": 1, "num_classes": 2, "width": 8},
        "labels": list(CNN_LABELS),
        "preprocessing": {"size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.5]},
    }
    return _folder(out, "cnn.py", config, model.state_dict())
