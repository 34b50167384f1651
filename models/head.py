"""YOLOv3/v5 anchor-based detection head."""

from __future__ import annotations

import math

import torch
from torch import nn


class Detect(nn.Module):
    """Three anchors per level, one 1x1 conv per level.

    Training (or ``export_raw``): returns the raw maps, a list of (B, na, H_i, W_i, 5 + nc).
    Inference: returns (B, N, 5 + nc) decoded boxes — cx, cy, w, h in input pixels, objectness and class
    probabilities — with xy = (2 sigmoid - 0.5 + grid) * stride and wh = (2 sigmoid)^2 * anchor.

    ``anchors`` are stored in grid units (pixels / stride) once the strides are known, as in YOLOv5.
    """

    stride: torch.Tensor

    def __init__(self, nc: int = 80, anchors: list[list[float]] | tuple = (),
                 ch: list[int] | tuple = ()) -> None:
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2))
        self.register_buffer("stride", torch.ones(self.nl), persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self._grid_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        if xs[0].dtype == torch.bfloat16:  # under CPU autocast: bf16 would round a 600-px box by up to 2 px
            with torch.autocast(xs[0].device.type, enabled=False):
                return self._forward([x.float() for x in xs])
        return self._forward(xs)

    def _forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor] | torch.Tensor:
        maps = []
        for i, x in enumerate(xs):
            b, _, h, w = x.shape
            y = self.m[i](x)
            if y.is_contiguous(memory_format=torch.channels_last) and not torch.jit.is_tracing():
                # Already (B, H, W, na * no) in memory: a view, so neither this nor the backward pass copies
                # (the transposing copies cost ~10 % of a yolov5n training step on a CPU).
                maps.append(y.permute(0, 2, 3, 1).view(b, h, w, self.na, self.no).permute(0, 3, 1, 2, 4))
            else:
                maps.append(y.view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return maps
        return self.decode(maps)

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Raw maps -> (B, N, 5 + nc) boxes in input pixels."""
        if not torch.is_grad_enabled() and not torch.jit.is_tracing() and not torch.jit.is_scripting():
            return self._decode_in_place(maps)
        out = []
        for i, p in enumerate(maps):
            b, _, h, w, _ = p.shape
            grid, anchor_grid = self._grid(i, h, w, p.device, p.dtype)
            y = p.sigmoid()
            xy = (y[..., :2] * 2 + grid) * self.stride[i]
            wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).reshape(b, -1, self.no))
        return torch.cat(out, 1)

    def _decode_in_place(self, maps: list[torch.Tensor]) -> torch.Tensor:
        # The same arithmetic written straight into the output: one pass over each map (the sigmoid, which
        # also reorders it) instead of three, then the four box columns in place.
        b = maps[0].shape[0]
        out = maps[0].new_empty(b, sum(p[0, ..., 0].numel() for p in maps), self.no)
        start = 0
        for i, p in enumerate(maps):
            _, na, h, w, no = p.shape
            y = out[:, start:start + na * h * w].view(b, na, h, w, no)
            torch.sigmoid(p, out=y)
            grid, anchor_grid = self._grid(i, h, w, p.device, p.dtype)
            y[..., :2].mul_(2).add_(grid).mul_(self.stride[i])
            y[..., 2:4].mul_(2).square_().mul_(anchor_grid)
            start += na * h * w
        return out

    def _grid(self, i: int, h: int, w: int, device: torch.device, dtype: torch.dtype
              ) -> tuple[torch.Tensor, torch.Tensor]:
        # Identity and in-place version of the two buffers, not their values: reading a GPU value here would
        # stall every forward pass until the GPU has caught up.
        key = (i, h, w, device, dtype, self.stride.data_ptr(), self.stride._version, self.anchors.data_ptr(),
               self.anchors._version)
        cached = self._grid_cache.get(key)
        if cached is not None and not torch.jit.is_tracing():
            return cached
        ys = torch.arange(h, device=device, dtype=dtype)
        xs = torch.arange(w, device=device, dtype=dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack((gx, gy), -1).view(1, 1, h, w, 2) - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).to(dtype).view(1, self.na, 1, 1, 2)
        if not torch.jit.is_tracing():
            self._grid_cache = {k: v for k, v in self._grid_cache.items() if k[0] != i}
            self._grid_cache[key] = (grid, anchor_grid)
        return grid, anchor_grid

    def initialize_biases(self, class_frequency: torch.Tensor | None = None) -> None:
        """YOLOv5 prior: about 8 objects per 640x640 image, class probability 0.6 / nc."""
        for conv, s in zip(self.m, self.stride, strict=False):
            b = conv.bias.view(self.na, -1)
            with torch.no_grad():
                b[:, 4] += math.log(8 / (640 / float(s)) ** 2)
                if class_frequency is None:
                    b[:, 5:] += math.log(0.6 / (self.nc - 0.99))
                else:
                    b[:, 5:] += torch.log(class_frequency / class_frequency.sum())
