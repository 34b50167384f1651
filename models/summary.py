"""Parameter and FLOP counts, and a per-layer summary table."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PROBE_SIZE = 64  # FLOPs are counted on a small input and scaled: every layer's cost grows with H x W


def count_parameters(model: nn.Module) -> int:
    """All parameters of ``model``, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def count_gflops(model: nn.Module, imgsz: int | tuple[int, int] = 640, channels: int = 3) -> float:
    """GFLOPs of one forward pass at ``imgsz``, in the YOLOv5 family's convention.

    Convolutions and matrix products count 2 FLOPs per multiply-add (torch's FLOP counter);
    each BatchNorm adds 4 FLOPs per output element (thop's 2 operations per element, doubled as
    YOLOv5 doubles every thop count), so that the figures of an unfused model match the published ones.
    """
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    bn_elements = 0

    def count_bn(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal bn_elements
        bn_elements += output.numel()

    hooks = [m.register_forward_hook(count_bn) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    param = next(model.parameters())
    x = torch.zeros(1, channels, PROBE_SIZE, PROBE_SIZE, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    flops = counter.get_total_flops() + 4 * bn_elements
    return flops * (h * w) / PROBE_SIZE**2 / 1e9


def model_summary(model: nn.Module, imgsz: int = 640) -> str:
    """A table of layers (index, from, repeats, parameters, module, arguments) and the totals."""
    lines = [f"{'':>3}{'from':>18}{'n':>3}{'params':>10}  {'module':<14}"]
    for layer in getattr(model, "model", []):
        n = len(layer) if isinstance(layer, nn.Sequential) else 1
        sources = layer.sources[0] if len(layer.sources) == 1 else layer.sources
        lines.append(f"{layer.layer_index:>3}{str(sources):>18}{n:>3}{count_parameters(layer):>10,}  "
                     f"{layer.type_name:<14}")
    layers = sum(1 for _ in model.modules())
    gflops = count_gflops(model, imgsz)
    lines.append(f"summary: {layers} modules, {count_parameters(model):,} parameters, "
                 f"{gflops:.1f} GFLOPs at {imgsz} (2 per multiply-add, BatchNorm included)")
    return "\n".join(lines)
