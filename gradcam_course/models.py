"""Models shared by the chapters."""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    """LeNet-5 as in the MLI tutorial: two conv layers and three linear layers.

    28×28 input → conv1 (6×24×24) → pool → conv2 (16×8×8) → pool → 16·4·4 → 120 → 84 → 10.
    Every step is a named module so that any layer can be hooked; ``model.conv2`` is the
    last conv layer, whose 8×8 output is the usual Grad-CAM target. ReLUs are not in-place
    here; chapter 1 shows separately what an in-place ReLU does to a hook.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        return self.pool2(self.relu2(self.conv2(x)))

    def classifier(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(
                f"LeNet expects a batch of shape (N, C, 28, 28), got {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0) for a single image."
            )
        return self.classifier(self.features(x))
