"""The CSP blocks of the anchor-free YOLOv8 / YOLO11 family: C2f, C3k, C3k2 and the depth-wise Conv.

Attribute names are ultralytics' (``cv1``, ``cv2``, ``m`` ...), so the ``state_dict`` keys of their
checkpoints map one to one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.blocks import C3, Bottleneck, Conv


class DWConv(Conv):
    """Depth-wise Conv (groups = gcd(c1, c2)) + BatchNorm + SiLU: (B, c1, H, W) -> (B, c2, H/s, W/s)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, d: int = 1, act: bool = True) -> None:
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), d=d, act=act)


class C2f(nn.Module):
    """YOLOv8's CSP block: one 1x1 Conv split in two halves, ``n`` bottlenecks chained on the second half, every
    intermediate map concatenated into a last 1x1 Conv: (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, e=1.0, k=(3, 3)) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class C3k(C3):
    """C3 whose bottlenecks use two k x k convolutions (YOLO11's inner block)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: int = 3) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        hidden = int(c2 * e)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, g, e=1.0, k=(k, k)) for _ in range(n)))


class C3k2(C2f):
    """YOLO11's CSP block: C2f whose inner blocks are two-layer C3k (``c3k``) or 3x3 bottlenecks."""

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, g: int = 1,
                 shortcut: bool = True) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(C3k(self.c, self.c, 2, shortcut, g) if c3k
                               else Bottleneck(self.c, self.c, shortcut, g, k=(3, 3)) for _ in range(n))
