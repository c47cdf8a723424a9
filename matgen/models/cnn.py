"""A small CNN that judges micrographs: class logits and a regressed scalar (e.g. E11) from one
shared feature vector, which also serves as the embedding for Fréchet distances between sets.
"""

from __future__ import annotations

import torch
from torch import nn


class MicrostructureCNN(nn.Module):
    """x (N, C, R, R) in [0, 1] → (class logits (N, n_classes), target (N,), features (N, F))."""

    def __init__(
        self, n_classes: int = 4, img_channels: int = 1, width: int = 32, n_blocks: int = 4
    ) -> None:
        super().__init__()
        layers, ch = [], img_channels
        for i in range(n_blocks):
            nxt = width * 2 ** min(i, 3)
            layers += [
                nn.Conv2d(ch, nxt, 3, 1, 1),
                nn.BatchNorm2d(nxt),
                nn.ReLU(),
                nn.Conv2d(nxt, nxt, 3, 1, 1),
                nn.BatchNorm2d(nxt),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            ch = nxt
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = ch
        self.classify = nn.Linear(ch, n_classes)
        self.regress = nn.Linear(ch, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.classify(f), self.regress(f).squeeze(1), f
