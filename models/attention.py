"""Attention blocks for model YAMLs: squeeze-and-excitation (Hu et al., CVPR 2018) and CBAM (Woo et al.,
ECCV 2018). Both keep their input's shape and channels, so a row ``[21, 1, CBAM, [16]]`` can sit anywhere."""

from __future__ import annotations

import torch
from torch import nn


def _hidden(channels: int, reduction: int) -> int:
    return max(channels // reduction, 1)


class SE(nn.Module):
    """Squeeze-and-excitation: global average pool, a bottleneck MLP (1x1 convolutions with bias, ReLU) and a
    sigmoid gate per channel. ``SE(c1, reduction=16)``: 2·c1·h + h + c1 parameters for h = c1 // reduction."""

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"SE reduction must be >= 1, got {reduction}")
        h = _hidden(c1, reduction)
        self.squeeze = nn.Conv2d(c1, h, 1)
        self.excite = nn.Conv2d(h, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.excite(torch.relu(self.squeeze(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class ChannelGate(nn.Module):
    """CBAM's channel attention: the average- and max-pooled descriptors through one shared MLP, summed."""

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
        h = _hidden(c1, reduction)
        self.mlp = nn.Sequential(nn.Conv2d(c1, h, 1), nn.ReLU(inplace=True), nn.Conv2d(h, c1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(pooled)


class SpatialGate(nn.Module):
    """CBAM's spatial attention: channel-wise mean and max maps through one k x k convolution (no bias)."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"CBAM's spatial kernel must be odd, got {kernel}")
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Module):
    """Convolutional block attention: channel gate, then spatial gate. ``CBAM(c1, reduction=16, kernel=7)``:
    2·c1·h + h + c1 + 2·kernel² parameters for h = c1 // reduction."""

    def __init__(self, c1: int, reduction: int = 16, kernel: int = 7) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"CBAM reduction must be >= 1, got {reduction}")
        self.channel = ChannelGate(c1, reduction)
        self.spatial = SpatialGate(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
