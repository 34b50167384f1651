"""The anchor-free, decoupled detection head of YOLOv8 / YOLO11 (ultralytics' ``Detect``).

Per level: a box branch predicting, for each of the four sides, a distribution over ``reg_max`` distance bins
(distribution focal loss), and a class branch of per-class logits. Attribute names are ultralytics'
(``cv2`` box branch, ``cv3`` class branch, ``dfl``), so their checkpoints map one to one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.blocks import Conv
from models.c2f_blocks import DWConv


class DFL(nn.Module):
    """The expected distance of a distribution over ``c1`` bins: (B, 4 * c1, N) -> (B, 4, N), in grid units.

    A fixed 1x1 convolution with weights 0 .. c1 - 1 over the softmax of each side's bins."""

    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(c1, dtype=torch.float32).view(1, c1, 1, 1))
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n = x.shape
        return self.conv(x.view(b, 4, self.c1, n).transpose(2, 1).softmax(1)).view(b, 4, n)


def anchor_points(maps: list[torch.Tensor], strides: torch.Tensor, offset: float = 0.5
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every level in grid units, (N, 2) as x, y, and each one's stride, (N, 1)."""
    points, stride_column = [], []
    for m, stride in zip(maps, strides):
        h, w = m.shape[-2:]
        ys = torch.arange(h, device=m.device, dtype=torch.float32) + offset
        xs = torch.arange(w, device=m.device, dtype=torch.float32) + offset
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        stride_column.append(torch.full((h * w, 1), float(stride), device=m.device))
    return torch.cat(points), torch.cat(stride_column)


def distances_to_boxes(distances: torch.Tensor, points: torch.Tensor, xywh: bool = True, dim: int = -1
                       ) -> torch.Tensor:
    """(left, top, right, bottom) distances from ``points`` -> boxes (cx, cy, w, h, or x1, y1, x2, y2)."""
    lt, rb = distances.chunk(2, dim)
    x1y1, x2y2 = points - lt, points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


class AnchorFreeDetect(nn.Module):
    """Decoupled anchor-free head. ``depthwise_cls``: YOLO11's lighter class branch (depth-wise 3x3 + 1x1 twice);
    YOLOv8's is two 3x3 Convs.

    Training: the raw maps, a list of (B, 4 * reg_max + nc, H_i, W_i). Inference: (B, N, 5 + nc) decoded boxes in
    the layout of the anchor-based head — cx, cy, w, h in input pixels, a constant objectness of 1, class
    probabilities — so NMS, exports and evaluation treat both heads alike.
    """

    stride: torch.Tensor

    def __init__(self, nc: int = 80, reg_max: int = 16, depthwise_cls: bool = False, ch: list[int] | tuple = ()
                 ) -> None:
        super().__init__()
        if reg_max < 1:
            raise ValueError(f"reg_max must be >= 1, got {reg_max}")
        self.nc, self.nl, self.reg_max = nc, len(ch), reg_max
        self.no = nc + 4 * reg_max
        self.depthwise_cls = bool(depthwise_cls)
        self.register_buffer("stride", torch.ones(self.nl), persistent=False)
        c2, c3 = max(16, ch[0] // 4, reg_max * 4), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1))
                                 for x in ch)
        if self.depthwise_cls:
            self.cv3 = nn.ModuleList(nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                                                   nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                                                   nn.Conv2d(c3, nc, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1))
                                     for x in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self._anchor_cache: tuple | None = None

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        maps = [torch.cat((self.cv2[i](x), self.cv3[i](x)), 1) for i, x in enumerate(xs)]
        return maps if self.training else self.decode(maps)

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Raw maps -> (B, N, 5 + nc) boxes in input pixels (float32 even under autocast)."""
        b = maps[0].shape[0]
        x = torch.cat([m.float().reshape(b, self.no, -1) for m in maps], 2)
        box, cls = x.split((4 * self.reg_max, self.nc), 1)
        points, strides = self._anchors(maps)
        boxes = distances_to_boxes(self.dfl(box), points.T.unsqueeze(0), xywh=True, dim=1) * strides.T
        objectness = torch.ones_like(boxes[:, :1])
        return torch.cat((boxes, objectness, cls.sigmoid()), 1).transpose(1, 2)

    def _anchors(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(m.shape[-2:] for m in maps), maps[0].device, self.stride.data_ptr(), self.stride._version)
        if self._anchor_cache is None or self._anchor_cache[0] != key or torch.jit.is_tracing():
            self._anchor_cache = (key, *anchor_points(maps, self.stride))
        return self._anchor_cache[1], self._anchor_cache[2]

    def initialize_biases(self, class_frequency: torch.Tensor | None = None) -> None:
        """Box logits 1.0; class prior of about 5 objects per 640x640 image spread over the classes (or, with
        ``class_frequency``, in proportion to it)."""
        with torch.no_grad():
            for box, cls, s in zip(self.cv2, self.cv3, self.stride):
                box[-1].bias.fill_(1.0)
                prior = 5 / (640 / float(s)) ** 2
                if class_frequency is None:
                    cls[-1].bias[: self.nc] = math.log(prior / self.nc)
                else:
                    cls[-1].bias[: self.nc] = torch.log(prior * class_frequency / class_frequency.sum())
