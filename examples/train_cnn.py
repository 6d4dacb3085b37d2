"""Train the bundled planted-truth digit CNN (`examples/models/digits-cnn/`, explain-cnn format).

Usage: python examples/train_cnn.py [--out DIR]

The planted cause is the one load_digits digit pasted on a cluttered 32x32 canvas; covering it
(grey, black or blur) must give "none". Prints held-out accuracy and the rate at which covering
the digit's box flips the answer to "none", then writes model.safetensors and config.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `explain`
from explain.loading.cnn import build_architecture  # noqa: E402
from planted_data import DIGIT_LABELS, cover, digit_images, seed_everything  # noqa: E402

SEED = 0
CONFIG: dict[str, Any] = {
    "format": "explain-cnn", "format_version": 1, "architecture": "SmallCNN",
    "arch_args": {"in_channels": 1, "num_classes": len(DIGIT_LABELS), "width": 16},
    "labels": list(DIGIT_LABELS),
    "preprocessing": {"size": [32, 32], "channels": 1, "mean": [0.5], "std": [0.5]},
}


def preprocess(images: list[np.ndarray], spec: dict = CONFIG["preprocessing"]) -> torch.Tensor:
    """Return a (N, C, H, W) float tensor made exactly as a loader applying `spec` makes it."""
    mode = {1: "L", 3: "RGB"}[spec["channels"]]
    height, width = spec["size"]
    arrays = [np.asarray(Image.fromarray(im).convert(mode).resize((width, height),
                                                                  Image.Resampling.BILINEAR),
                         np.float32)
              for im in images]
    x = torch.from_numpy(np.stack(arrays) / 255.0).float()
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    mean = torch.tensor(spec["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"]).view(1, -1, 1, 1)
    return (x - mean) / std


@torch.inference_mode()
def predict(model: nn.Module, images: list[np.ndarray]) -> list[str]:
    """Return the predicted label name for each uint8 image."""
    model.eval()
    logits = torch.cat([model(preprocess(images[i:i + 512])) for i in range(0, len(images), 512)])
    return [DIGIT_LABELS[k] for k in logits.argmax(-1).tolist()]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    """Train with AdamW and a one-cycle schedule on the preprocessed tensors."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        order, total = torch.randperm(len(x)), 0.0
        for i in range(0, len(x), 128):
            batch = order[i:i + 128]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}  loss {total / len(x):.4f}", flush=True)


def main() -> None:
    """Train, check the quality gates, and write the checkpoint folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models/digits-cnn")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    seed_everything(SEED)
    start = time.perf_counter()

    data = digit_images(24000, seed=SEED, split="train")
    x = preprocess([im for im, _, _ in data])
    y = torch.tensor([DIGIT_LABELS.index(label) for _, label, _ in data])
    model = build_architecture(CONFIG["architecture"], CONFIG["arch_args"])
    train(model, x, y, args.epochs)
    print(f"training took {time.perf_counter() - start:.1f}s")

    heldout = digit_images(3000, seed=SEED, split="heldout")
    pred = predict(model, [im for im, _, _ in heldout])
    acc = np.mean([p == label for p, (_, label, _) in zip(pred, heldout)])
    print(f"held-out accuracy: {acc:.4f} on {len(heldout)} images")
    with_digit = [(im, box) for im, _, box in heldout if box is not None]
    gates = {"accuracy": acc}
    for fill in (128, "blur", 0):
        pred = predict(model, [cover(im, box, fill) for im, box in with_digit])
        gates[f"cover {fill}"] = rate = np.mean([p == "none" for p in pred])
        print(f"covering the digit with {fill!r} flips to 'none': {rate:.4f} "
              f"of {len(with_digit)}")

    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(args.out / "model.safetensors"))
    (args.out / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    print(f"wrote {args.out}")
    if acc < 0.95 or gates["cover 128"] < 0.90 or gates["cover blur"] < 0.90:
        sys.exit(f"quality gate failed: {gates}")


if __name__ == "__main__":
    main()
