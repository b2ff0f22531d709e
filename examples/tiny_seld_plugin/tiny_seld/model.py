"""A deliberately small multi-ACCDOA network (for the plugin example, not for results)."""
from __future__ import annotations

import torch
from torch import nn


class TinySELD(nn.Module):
    """``(batch, channels, feature_frames, bins)`` -> ``(batch, label_frames, 3 * 3 * classes)``
    multi-ACCDOA, track-major, in [-1, 1]."""

    def __init__(self, in_channels: int, in_bins: int, num_classes: int, *,
                 frames_per_label: int = 5, width: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d((frames_per_label, 4)),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d((None, 1)))
        self.head = nn.Linear(width, 3 * 3 * num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x).squeeze(-1).transpose(1, 2)  # (batch, label_frames, width)
        return torch.tanh(self.head(h))
