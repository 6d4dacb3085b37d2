"""Plain PyTorch CNN architectures for checkpoints in the "explain-cnn" format.

Such a checkpoint is a folder with `model.safetensors` (a state dict) and `config.json` naming
an `architecture` and its `arch_args`; `build_architecture` turns that pair into an untrained
module ready for `load_state_dict`.
"""
from __future__ import annotations

import importlib
from typing import Any

from torch import Tensor, nn


def _block(cin: int, cout: int) -> list[nn.Module]:
    """Return the layers of one 3x3 conv + BatchNorm + (non-inplace) ReLU block."""
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


class SmallCNN(nn.Module):
    """Three conv+BatchNorm+ReLU blocks (two max-pooled), global average pool, one linear layer.

    Each ReLU is its own non-inplace module and the last `nn.Conv2d` in `modules()` order is
    the last conv layer, so hook-based methods (Grad-CAM, DeepLift, guided backprop) work on
    it as is. BatchNorm is there because, on small digits in clutter, it trains several times
    faster than the plain stack. Global pooling accepts any input of at least 16x16 pixels.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        """Build the layers; channel widths are width, 2*width, 2*width."""
        super().__init__()
        self.features = nn.Sequential(
            *_block(in_channels, width), nn.MaxPool2d(2),
            *_block(width, 2 * width), nn.MaxPool2d(2),
            *_block(2 * width, 2 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Return class logits of shape (batch, num_classes) for images (batch, C, H, W)."""
        return self.classifier(self.pool(self.features(x)).flatten(1))


ARCHITECTURES: dict[str, type[nn.Module]] = {"SmallCNN": SmallCNN}


def build_architecture(name: str, args: dict[str, Any]) -> nn.Module:
    """Return an untrained module for an architecture name and its constructor arguments.

    `name` is a key of ARCHITECTURES or "torchvision.<fn>" (e.g. "torchvision.resnet18"),
    which calls torchvision.models.<fn>(weights=None, **args).
    """
    if name.startswith("torchvision."):
        try:
            models = importlib.import_module("torchvision.models")
        except ImportError as exc:
            raise ImportError(f"architecture {name!r} needs torchvision: pip install torchvision"
                              ) from exc
        fn = getattr(models, name.removeprefix("torchvision."), None)
        if fn is None:
            raise KeyError(f"torchvision.models has no {name.removeprefix('torchvision.')!r}")
        return fn(weights=None, **args)
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; available: "
                       f"{', '.join(sorted(ARCHITECTURES))}, or torchvision.<model function>")
    return ARCHITECTURES[name](**args)
