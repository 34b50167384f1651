"""ResNet building blocks, plain and SPD, in the SPD-Conv authors' layout.

In a down-sampling block the 3x3 convolution runs at stride 1 and a space-to-depth follows it (BatchNorm then
sees 4C channels), the next convolution brings 4C back to the block's width, and the shortcut stays a 1x1
stride-2 convolution. ``spd=False`` gives the usual strided ResNet blocks (the baselines).
"""

from __future__ import annotations

import torch
from torch import nn

from models.blocks import SpaceToDepth


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


class _Shortcut(nn.Sequential):
    """Identity, or a 1x1 (strided) convolution + BatchNorm when the shape changes."""

    def __init__(self, c1: int, c2: int, stride: int) -> None:
        layers = [] if stride == 1 and c1 == c2 else [nn.Conv2d(c1, c2, 1, stride, bias=False), _bn(c2)]
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """3x3 -> 3x3 with a residual: (B, c1, H, W) -> (B, c2, H/s, W/s). ``spd``: a stride-2 block runs its first
    conv at stride 1 and then space-to-depth (BatchNorm over 4 c2), the second conv is 4 c2 -> c2."""

    expansion = 1

    def __init__(self, c1: int, c2: int, stride: int = 1, spd: bool = False) -> None:
        super().__init__()
        use_spd = spd and stride == 2
        self.conv1 = nn.Conv2d(c1, c2, 3, 1 if use_spd else stride, 1, bias=False)
        self.spd = SpaceToDepth() if use_spd else nn.Identity()
        mid = 4 * c2 if use_spd else c2
        self.bn1 = _bn(mid)
        self.conv2 = nn.Conv2d(mid, c2, 3, 1, 1, bias=False)
        self.bn2 = _bn(c2)
        self.shortcut = _Shortcut(c1, c2, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.spd(self.conv1(x))))
        return self.act(self.bn2(self.conv2(y)) + self.shortcut(x))


class BottleNeck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) with a residual: (B, c1, H, W) -> (B, 4 planes, H/s, W/s). ``spd``: the
    stride-2 3x3 runs at stride 1, space-to-depth follows (BatchNorm over 4 planes), the last 1x1 is 4 planes ->
    4 planes."""

    expansion = 4

    def __init__(self, c1: int, planes: int, stride: int = 1, spd: bool = False) -> None:
        super().__init__()
        use_spd = spd and stride == 2
        self.conv1 = nn.Conv2d(c1, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1 if use_spd else stride, 1, bias=False)
        self.spd = SpaceToDepth() if use_spd else nn.Identity()
        mid = 4 * planes if use_spd else planes
        self.bn2 = _bn(mid)
        self.conv3 = nn.Conv2d(mid, self.expansion * planes, 1, bias=False)
        self.bn3 = _bn(self.expansion * planes)
        self.shortcut = _Shortcut(c1, self.expansion * planes, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.act(self.bn2(self.spd(self.conv2(y))))
        return self.act(self.bn3(self.conv3(y)) + self.shortcut(x))


class ConvBNReLU(nn.Sequential):
    """The CIFAR-style ResNet stem: 3x3 stride-1 conv, BatchNorm, ReLU (no max-pool)."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__(nn.Conv2d(c1, c2, k, s, k // 2, bias=False), _bn(c2), nn.ReLU(inplace=True))


class Classify(nn.Module):
    """Global average pool and a linear layer: (B, c1, H, W) -> (B, nc) logits."""

    def __init__(self, c1: int, nc: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(c1, nc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(x).flatten(1))
