"""Attention blocks for model YAMLs: squeeze-and-excitation (Hu et al., CVPR 2018) and CBAM (Woo et al.,
ECCV 2018), which keep their input's shape and channels, so a row ``[21, 1, CBAM, [16]]`` can sit anywhere;
and YOLO11's position-sensitive attention stage (C2PSA), with ultralytics' attribute names."""

from __future__ import annotations

import torch
from torch import nn

from models.blocks import Conv


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


class PositionSensitiveAttention(nn.Module):
    """Multi-head self-attention over the H x W positions (YOLO11's ``Attention``): 1x1 query/key/value
    projection (keys and queries at ``attn_ratio`` of the head width), softmax attention, a 3x3 depth-wise
    positional term on the values and a 1x1 output projection. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = Conv(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # reshape, not view: a channels-last map is not contiguous in this order
        qkv = self.qkv(x).reshape(b, self.num_heads, 2 * self.key_dim + self.head_dim, h * w)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        attention = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)  # scaled first, as ultralytics does
        y = (v @ attention.transpose(-2, -1)).reshape(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)


class PSABlock(nn.Module):
    """Position-sensitive attention then a two-layer 1x1 feed-forward, each with a residual."""

    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True) -> None:
        super().__init__()
        self.attn = PositionSensitiveAttention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


class C2PSA(nn.Module):
    """YOLO11's attention stage: a 1x1 Conv split in two halves, ``n`` PSABlocks (one head per 64 channels) on
    the second, both halves fused by a 1x1 Conv. (B, c1, H, W) -> (B, c1, H, W); ``c2`` must equal ``c1``."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ValueError(f"C2PSA keeps its channels: c1 {c1} != c2 {c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1))
                                 for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))
