"""Convolutional building blocks of YOLOv5 and YOLOv5-SPD.

Shapes are written as (B, C, H, W). Every block keeps the attribute names of the YOLOv5 family
(``conv``, ``bn``, ``cv1``, ``m`` ...) so that ``state_dict`` keys of released weights map one to one.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def autopad(kernel: int, padding: int | None = None, dilation: int = 1) -> int:
    """Padding that keeps the spatial size for stride 1 ('same' padding)."""
    if padding is not None:
        return padding
    effective = dilation * (kernel - 1) + 1
    return effective // 2


class _BatchNormSiLU(torch.autograd.Function):
    """Training-mode BatchNorm then SiLU that keeps only the BatchNorm input for the backward pass.

    Autograd would keep the BatchNorm input and, for SiLU, a second map of the same size (SiLU's input);
    here that second map is recomputed from the first during the backward pass (one multiply-add), which cuts
    a third of the activations a YOLOv5 training step holds.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor,
                running_var: torch.Tensor, momentum: float, eps: float) -> torch.Tensor:
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.eps = eps
        return nn.functional.silu(y, inplace=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, bias, mean, invstd = ctx.saved_tensors
        scale = weight * invstd
        shape = (1, -1) + (1,) * (x.dim() - 2)
        # The BatchNorm output again, in float32 like the forward kernel (under AMP x is half, the rest float).
        y = torch.addcmul((bias - mean * scale).float().view(shape), x, scale.float().view(shape))
        grad_y = torch.ops.aten.silu_backward(grad.to(y.dtype), y).to(x.dtype)
        del y
        grad_x, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
            grad_y, x, weight, None, None, mean, invstd, True, ctx.eps, list(ctx.needs_input_grad[:3]))
        return grad_x, grad_weight, grad_bias, None, None, None, None


def batch_norm_silu(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``silu(bn(x))`` for a BatchNorm2d in training mode (running statistics updated as ``bn(x)`` does),
    holding one map for the backward pass instead of two."""
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    return _BatchNormSiLU.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum, bn.eps)


def _cpu_bf16_autocast(x: torch.Tensor) -> bool:
    """Under CPU bf16 autocast the memory-saving BatchNorm + SiLU costs time: its backward recomputes the map in
    float32 and casts the gradient twice: a space_depth_n step (batch 16) took 654 ms against plain autograd's
    555 at 256 px and 4.8 s against 3.8 at 640. There plain autograd is used; the saving is kept where it is
    free (float32 steps took the same time either way, and on CUDA)."""
    return x.device.type == "cpu" and torch.is_autocast_enabled("cpu")


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + SiLU: (B, c1, H, W) -> (B, c2, H/s, W/s)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 d: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        # In place: its input is the fresh BatchNorm output, which nothing else reads (same gradients, less memory).
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn.training and torch.is_grad_enabled() and type(self.bn) is nn.BatchNorm2d \
                and self.bn.track_running_stats and isinstance(self.act, nn.SiLU) and not _cpu_bf16_autocast(x):
            return batch_norm_silu(self.conv(x), self.bn)
        return self.act(self.bn(self.conv(x)))


class _OnnxSpaceToDepth(torch.autograd.Function):
    """ONNX's own SpaceToDepth node (block size 2, channel block index 2*row + col) in an exported graph."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(b, 4 * c, h // 2, w // 2)

    @staticmethod
    def symbolic(g, x):
        return g.op("SpaceToDepth", x, blocksize_i=2)


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2), channel blocks in the authors' order.

    The four sub-grids are x[::2, ::2], x[1::2, ::2], x[::2, 1::2], x[1::2, 1::2] (rows first), which is
    the order of YOLOv5's Focus and of the SPD-Conv reference code, so released weights port unchanged.
    Done as one reshape + permute copy rather than four strided slices and a concatenation.
    """
    if torch.onnx.is_in_onnx_export():
        # ONNX Runtime runs a 6-D Transpose slowly (30 % of space_depth_n's FP32 time, 45 % in INT8); its
        # SpaceToDepth op is fast but orders the blocks 2*row + col, so the middle two are swapped back.
        y = _OnnxSpaceToDepth.apply(x)
        c = x.shape[1]
        return torch.cat([y[:, :c], y[:, 2 * c:3 * c], y[:, c:2 * c], y[:, 3 * c:]], 1)
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"space_to_depth needs even height and width, got {h}x{w}")
    if c > 1 and x.is_contiguous(memory_format=torch.channels_last):
        # Channels-last in, channels-last out (a format change would cost a second copy in the next conv):
        # (B, H/2, row, W/2, col, C) -> (B, H/2, W/2, col, row, C), block index = 2*col + row.
        y = x.permute(0, 2, 3, 1).reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5)
        return y.reshape(b, h // 2, w // 2, 4 * c).permute(0, 3, 1, 2)
    # (B, C, H/2, row, W/2, col) -> (B, col, row, C, H/2, W/2): block index = 2*col + row
    y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 5, 3, 1, 2, 4)
    return y.reshape(b, 4 * c, h // 2, w // 2)


class SpaceToDepth(nn.Module):
    """Lossless 2x down-sampling: (B, C, H, W) -> (B, 4C, H/2, W/2). No parameters.

    ``dimension`` is accepted for compatibility with the authors' ``space_to_depth(dimension=1)``.
    """

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        if dimension != 1:
            raise ValueError("SpaceToDepth only stacks along the channel dimension (dimension=1)")
        self.d = dimension
        self.folded = False  # set by C3.fold_space_to_depth: the next layer's convolutions do it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.folded else space_to_depth(x)


@torch.no_grad()
def conv_on_space_to_depth(conv: nn.Conv2d) -> nn.Conv2d:
    """The convolution on x equal to ``conv`` on ``space_to_depth(x)``: kernel 2k, stride 2s, padding 2p, input
    channel c of block (row, col) moved to tap (2i + row, 2j + col). The same multiply-adds, without the copy."""
    if conv.groups != 1 or conv.dilation != (1, 1):
        raise ValueError("only an ungrouped, undilated convolution folds a space-to-depth step")
    c2, c4, kh, kw = conv.weight.shape
    c = c4 // 4
    # weight[o, (2 col + row) c + ch, i, j] -> folded[o, ch, 2 i + row, 2 j + col]
    w = conv.weight.reshape(c2, 2, 2, c, kh, kw).permute(0, 3, 4, 2, 5, 1).reshape(c2, c, 2 * kh, 2 * kw)
    folded = nn.Conv2d(c, c2, (2 * kh, 2 * kw), tuple(2 * v for v in conv.stride),
                       tuple(2 * v for v in conv.padding), bias=conv.bias is not None).to(w.device, w.dtype)
    folded.weight.copy_(w)
    if conv.bias is not None:
        folded.bias.copy_(conv.bias)
    return folded.requires_grad_(conv.weight.requires_grad)


def depth_to_space(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`space_to_depth`: (B, 4C, H, W) -> (B, C, 2H, 2W)."""
    b, c4, h, w = x.shape
    c = c4 // 4
    y = x.reshape(b, 2, 2, c, h, w).permute(0, 3, 4, 2, 5, 1)
    return y.reshape(b, c, 2 * h, 2 * w)


SPD_ORDERS = ("spd_first", "conv_first")


class SPDConv(nn.Module):
    """SPD-Conv in either order, one registry layer (``[c2, k, order]`` in a config row):

    - ``spd_first`` (the paper's Fig. 3): space-to-depth, then a non-strided k x k convolution:
      (B, c1, H, W) -> (B, c2, H/2, W/2). A drop-in replacement for a stride-2 convolution or a pooling layer in
      any CNN; a 3 x 3 stride-2 kernel embeds in it exactly, and for inference it folds into the one 2k x 2k
      stride-2 convolution it equals (:meth:`fold`).
    - ``conv_first`` (the YOLOv5-SPD authors' YAMLs): a stride-1 k x k convolution at full resolution, then
      space-to-depth: (B, c1, H, W) -> (B, 4 c2, H/2, W/2); the next layer reads four times the channels.
    """

    def __init__(self, c1: int, c2: int, k: int = 3, order: str = "spd_first", act: bool = True) -> None:
        super().__init__()
        if order not in SPD_ORDERS:
            raise ValueError(f"SPDConv order must be one of {', '.join(SPD_ORDERS)}, got {order!r}")
        self.order = order
        self.spd = SpaceToDepth()
        self.conv = Conv(4 * c1 if order == "spd_first" else c1, c2, k, 1, act=act)
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "conv_first":
            return self.spd(self.conv(x))
        return self.conv(x if self.folded else self.spd(x))

    @torch.no_grad()
    def fold(self) -> bool:
        """Inference only (after loading weights): a ``spd_first`` block becomes the 2k x 2k stride-2 convolution
        on its input it equals (no space-to-depth copy). Returns whether it folded."""
        conv = self.conv.conv
        if self.folded or self.order != "spd_first" or self.training or conv.groups != 1:
            return self.folded
        self.conv.conv = conv_on_space_to_depth(conv)
        self.folded = True
        return True


class Focus(nn.Module):
    """Space-to-depth stem followed by a Conv: (B, c1, H, W) -> (B, c2, H/2, W/2)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = Conv(4 * c1, c2, k, s, p, g, act=act)
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x if self.folded else space_to_depth(x))

    @torch.no_grad()
    def fold(self) -> bool:
        """Replace space-to-depth + the k x k conv (stride s, padding p) by the one conv on the input it
        equals: kernel 2k, stride 2s, padding 2p, input channel c of block (row, col) moved to tap
        (2i + row, 2j + col). Twice as fast on CPUs (a 3-channel input instead of a 12-channel copy);
        inference only (the weights are re-laid out, so do it after loading them). Returns whether it folded."""
        conv = self.conv.conv
        if self.folded or conv.groups != 1 or conv.dilation != (1, 1) or self.training:
            return self.folded
        self.conv.conv = conv_on_space_to_depth(conv)
        self.folded = True
        return True


class Bottleneck(nn.Module):
    """k[0] x k[0] then k[1] x k[1] Conv (YOLOv5: 1x1 then 3x3) with an optional residual:
    (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: tuple[int, int] = (1, 3)) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, k[0], 1)
        self.cv2 = Conv(hidden, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with three convolutions: (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1,
                 e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.cv3 = Conv(2 * hidden, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))

    def fold_space_to_depth(self, spd: SpaceToDepth) -> bool:
        """Take over ``spd``, the layer feeding this one alone (inference only): cv1 and cv2, the two 1x1
        convolutions that read its output, become the 2x2 stride-2 convolutions they equal on its input, and
        ``spd`` passes its input through. Returns whether it folded."""
        convs = (self.cv1.conv, self.cv2.conv)
        if spd.folded or self.training or any(c.groups != 1 or c.dilation != (1, 1) for c in convs):
            return False
        self.cv1.conv, self.cv2.conv = (conv_on_space_to_depth(c) for c in convs)
        spd.folded = True
        return True


class SPP(nn.Module):
    """Spatial pyramid pooling with parallel max-pools: (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, k: tuple[int, ...] | list[int] = (5, 9, 13), e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c1 * e)  # e: only SPD forms of YOLOv5 graphs set it (models.spd_transfer)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=size, stride=1, padding=size // 2) for size in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [pool(x) for pool in self.m], 1))


class SPPF(nn.Module):
    """Fast SPP: three chained k x k max-pools equal SPP(k, 2k-1, 3k-2): (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, k: int = 5, e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c1 * e)  # e: only SPD forms of YOLOv5 graphs set it (models.spd_transfer)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    """Concatenate a list of tensors along ``dimension``: [(B, Ci, H, W)] -> (B, sum Ci, H, W)."""

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.d)
