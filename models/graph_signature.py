"""What makes two built graphs the same for their weights: a signature per layer (kind, inputs, every
convolution's shape, BatchNorm, pools, heads) and the first layer where two configs differ."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from models.anchor_free_head import AnchorFreeDetect
from models.blocks import SPP, SPPF, Bottleneck, Concat, Conv, Focus, SpaceToDepth, SPDConv
from models.head import Detect
from models.parser import load_config, parse_model


def layer_signature(layer: nn.Module) -> tuple:
    """What must agree between two layers for weights to mean the same thing in both."""
    kind = type(layer).__name__
    parts: list[Any] = [("order", layer.order)] if isinstance(layer, SPDConv) else []
    if isinstance(layer, SPPF):
        parts.append(("pool", layer.m.kernel_size))
    elif isinstance(layer, SPP) and len(layer.m) == 3:
        k = [pool.kernel_size for pool in layer.m]
        if k == [k[0], 2 * k[0] - 1, 3 * k[0] - 2]:  # SPP(k, 2k-1, 3k-2) == SPPF(k): chained pools
            kind, parts = "SPPF", [("pool", k[0])]
    for name, sub in layer.named_modules():
        part = _part(name, sub, kind, sub is layer)
        if part is not None:
            parts.append(part)
    return (kind, tuple(layer.sources), tuple(parts))


def _part(name: str, sub: nn.Module, kind: str, is_layer: bool) -> tuple | None:
    """One sub-module's share of a layer signature (None: nothing that weights depend on)."""
    if isinstance(sub, nn.Conv2d):
        return (name, sub.in_channels, sub.out_channels, sub.kernel_size, sub.stride, sub.padding, sub.dilation,
                sub.groups, sub.bias is not None)
    if isinstance(sub, nn.BatchNorm2d):
        return (name, sub.num_features, sub.eps)
    if isinstance(sub, nn.MaxPool2d):
        return None if kind == "SPPF" else (name, sub.kernel_size, sub.stride, sub.padding)
    if isinstance(sub, nn.Upsample):
        return (name, sub.scale_factor, sub.size, sub.mode)
    if isinstance(sub, Bottleneck):
        return (name, sub.add)
    if isinstance(sub, (Concat, SpaceToDepth)):
        return (name, sub.d)
    if isinstance(sub, Detect):
        return (name, sub.nc, sub.na, sub.nl)
    if isinstance(sub, AnchorFreeDetect):
        return (name, sub.nc, sub.reg_max, sub.nl, sub.depthwise_cls)
    if is_layer or isinstance(sub, nn.SiLU | nn.Identity | nn.Sequential | nn.ModuleList | Conv | Focus | SPDConv):
        return None
    return (name, type(sub).__name__)


def _describe(config: dict, index: int) -> str:
    rows = list(config["backbone"]) + list(config["head"])
    return f"{rows[index]!r}" if index < len(rows) else "(none)"


def build_layers(config: dict, nc: int) -> tuple[nn.ModuleList, list[int]]:
    """The layers of ``config`` at ``nc`` classes and their output channels."""
    config = load_config({**copy.deepcopy(config), "nc": nc})
    layers, _, channels = parse_model(config)
    return layers, channels


def graph_difference(expected_cfg: dict, target_cfg: dict, nc: int, expected_name: str = "expected",
                     target_name: str = "target") -> str | None:
    """None when the two configs build the same graph (up to SPP(5,9,13) == SPPF(5)), else one line
    naming the first layer that differs."""
    expected, _ = build_layers(expected_cfg, nc)
    target, _ = build_layers(target_cfg, nc)
    for i in range(max(len(expected), len(target))):
        if i >= len(expected) or i >= len(target) or layer_signature(expected[i]) != layer_signature(target[i]):
            return (f"layer {i} differs: {target_name} has {_describe(target_cfg, i)}, "
                    f"{expected_name} needs {_describe(expected_cfg, i)}")
    return None
