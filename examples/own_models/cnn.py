"""A small hand-written CNN classifier, the kind a course builds: two conv blocks and a linear head."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """conv-ReLU-pool twice, global average pool, linear: logits (B, num_classes) for images (B, C, H, W)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool(self.relu2(self.conv2(x)))
        return self.fc(x.flatten(1))
