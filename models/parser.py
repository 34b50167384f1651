"""YOLOv5-style YAML model configs -> a list of layers.

A config row is ``[from, number, module, args]``. One registry maps each module name to its class and a
*channel rule*: how the constructor arguments and the output channels follow from the input channels.
Nothing in a config is evaluated as code: the only symbolic arguments are ``nc``, ``anchors`` and ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from models.attention import CBAM, SE
from models.blocks import C3, SPP, SPPF, Bottleneck, Concat, Conv, Focus, SpaceToDepth, SPDConv
from models.head import Detect
from models.resnet_blocks import BasicBlock, BottleNeck, Classify, ConvBNReLU
from utils.paths import PACKAGE_ROOT, find_named_file
from utils.yaml_files import load_yaml_mapping

CONFIG_DIR = PACKAGE_ROOT / "configs"


class ConfigError(ValueError):
    """A model config that cannot be built; the message names the file or row and the problem."""


def make_divisible(x: float, divisor: int = 8) -> int:
    """Round up to a multiple of ``divisor`` (YOLOv5's channel rounding)."""
    return int(math.ceil(x / divisor) * divisor)


@dataclass(frozen=True)
class BuildContext:
    """What a channel rule may read: input channels of the row, the width multiple and the config."""

    in_channels: list[int]
    width: float
    nc: int
    anchors: Any


# A channel rule returns (constructor args, output channels).
ChannelRule = Callable[[list[Any], BuildContext], tuple[list[Any], int]]


def _scaled_out(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    """Conv-like: args = [c2, ...]; c1 is prepended, c2 scaled by the width multiple."""
    if not args or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        raise ConfigError("needs the output channels (a number) as its first argument")
    c2 = make_divisible(args[0] * ctx.width)
    return [_single_input(ctx), c2, *args[1:]], c2


def _same_channels(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    return list(args), _single_input(ctx)


def _sum_channels(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    return list(args), sum(ctx.in_channels)


def _attention(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    """SE / CBAM: args = [reduction, (kernel)]; the input's channels are prepended and kept."""
    if any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in args) or len(args) > 2:
        raise ConfigError("takes [reduction] or [reduction, kernel] (positive whole numbers)")
    c1 = _single_input(ctx)
    return [c1, *args], c1


def _times_four(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    return list(args), 4 * _single_input(ctx)


def _expanded_out(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    """BottleNeck: args = [planes, ...]; the output has 4 x planes channels."""
    ctor_args, planes = _scaled_out(args, ctx)
    return ctor_args, BottleNeck.expansion * planes


def _classify(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int) or args[0] < 1:
        raise ConfigError("Classify needs [nc] (a positive class count)")
    return [_single_input(ctx), args[0]], args[0]


def _detect(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    if len(args) < 2:
        raise ConfigError("Detect needs [nc, anchors]")
    nc, anchors = args[0], args[1]
    if isinstance(anchors, int):  # number of anchors per level: placeholder boxes, AutoAnchor fills them
        anchors = [list(range(anchors * 2))] * len(ctx.in_channels)
    if len(anchors) != len(ctx.in_channels):
        raise ConfigError(f"Detect has {len(anchors)} anchor levels but {len(ctx.in_channels)} inputs")
    return [nc, anchors, list(ctx.in_channels)], 0


def _single_input(ctx: BuildContext) -> int:
    if len(ctx.in_channels) != 1:
        raise ConfigError(f"takes one input, got {len(ctx.in_channels)}")
    return ctx.in_channels[0]


@dataclass(frozen=True)
class LayerType:
    module: type[nn.Module]
    channels: ChannelRule
    repeats_inside: bool = False  # C3-style: the repeat count is a constructor argument, not a stack


REGISTRY: dict[str, LayerType] = {
    "Conv": LayerType(Conv, _scaled_out),
    "Focus": LayerType(Focus, _scaled_out),
    "Bottleneck": LayerType(Bottleneck, _scaled_out),
    "C3": LayerType(C3, _scaled_out, repeats_inside=True),
    "SPP": LayerType(SPP, _scaled_out),
    "SPPF": LayerType(SPPF, _scaled_out),
    "SPDConv": LayerType(SPDConv, _scaled_out),
    "SpaceToDepth": LayerType(SpaceToDepth, _times_four),
    "space_to_depth": LayerType(SpaceToDepth, _times_four),  # the authors' spelling
    "Concat": LayerType(Concat, _sum_channels),
    "nn.Upsample": LayerType(nn.Upsample, _same_channels),
    "Upsample": LayerType(nn.Upsample, _same_channels),
    "Detect": LayerType(Detect, _detect),
    "ConvBNReLU": LayerType(ConvBNReLU, _scaled_out),
    "BasicBlock": LayerType(BasicBlock, _scaled_out),
    "BottleNeck": LayerType(BottleNeck, _expanded_out),
    "Classify": LayerType(Classify, _classify),
    "SE": LayerType(SE, _attention),
    "CBAM": LayerType(CBAM, _attention),
}


def resolve_config_path(cfg: str | Path) -> Path:
    """A path as given, or a bare name (with or without .yaml) looked up in ``configs/``."""
    path = find_named_file(cfg, CONFIG_DIR, ".yaml")
    if path is not None:
        return path
    available = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("hyp")))
    raise ConfigError(f"{cfg}: model config not found (available in configs/: {available})")


def load_config(cfg: str | Path | dict) -> dict:
    """Read a model config (path, bare name or dict) and check its top-level keys."""
    if isinstance(cfg, dict):
        config, source = dict(cfg), "<dict>"
    else:
        path = resolve_config_path(cfg)
        source = str(path)
        config = load_yaml_mapping(path, ConfigError)
    for key in ("backbone", "head"):
        if not isinstance(config.get(key), list):
            raise ConfigError(f"{source}: missing or invalid '{key}' list")
    config.setdefault("depth_multiple", 1.0)
    config.setdefault("width_multiple", 1.0)
    config.setdefault("nc", 80)
    config.setdefault("ch", 3)
    config["_source"] = source
    _check_scalars(config, source)
    return config


# Sane ranges: a config (or a checkpoint's) outside them would build a model too large to allocate.
_LIMITS = {"depth_multiple": (0.0, 4.0), "width_multiple": (0.0, 4.0), "nc": (1, 100_000), "ch": (1, 64)}


def _check_scalars(config: dict, source: str) -> None:
    for key, (low, high) in _LIMITS.items():
        value = config[key]
        integral = key in ("nc", "ch")
        if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)) \
                or not (low < value <= high if not integral else low <= value <= high):
            kind = "an integer" if integral else "a number"
            raise ConfigError(f"{source}: '{key}' must be {kind} in {'[' if integral else '('}{low}, {high}], "
                              f"got {value!r}")


def _resolve_arg(value: Any, config: dict) -> Any:
    if isinstance(value, str):
        if value == "nc":
            return config["nc"]
        if value == "anchors":
            return config["anchors"]
        if value == "None":
            return None
    return value


def parse_model(config: dict) -> tuple[nn.ModuleList, list[int], list[int]]:
    """Build the layers of a config. Returns (layers, indices whose outputs are kept, output channels)."""
    depth, width = float(config["depth_multiple"]), float(config["width_multiple"])
    channels: list[int] = [int(config["ch"])]
    layers: list[nn.Module] = []
    save: set[int] = set()
    rows = list(config["backbone"]) + list(config["head"])
    source = config.get("_source", "<dict>")
    for i, row in enumerate(rows):
        where = f"{source}: layer {i} {row!r}"
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ConfigError(f"{where}: a row must be [from, number, module, args]")
        frm, number, name, args = row
        layer_type = REGISTRY.get(name)
        if layer_type is None:
            raise ConfigError(f"{where}: unknown module '{name}' (known: {', '.join(sorted(REGISTRY))})")
        sources = [frm] if isinstance(frm, int) else list(frm) if isinstance(frm, (list, tuple)) else None
        if not sources or not all(isinstance(f, int) for f in sources):
            raise ConfigError(f"{where}: 'from' must be an int or a list of ints")
        if any(f >= i or f < -i - 1 for f in sources):
            raise ConfigError(f"{where}: 'from' {frm} points outside layers 0..{i - 1}")
        if not isinstance(number, int) or number < 1:
            raise ConfigError(f"{where}: 'number' must be a positive int")
        if not isinstance(args, list):
            raise ConfigError(f"{where}: 'args' must be a list")
        args = [_resolve_arg(a, config) for a in args]
        # channels[0] is the image; layer j's output is channels[j + 1]; negative 'from' counts back
        in_channels = [channels[f] if f < 0 else channels[f + 1] for f in sources]
        ctx = BuildContext(in_channels, width, int(config["nc"]), config.get("anchors"))
        try:
            ctor_args, c_out = layer_type.channels(args, ctx)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        n = max(round(number * depth), 1) if number > 1 else number
        if layer_type.repeats_inside:
            ctor_args.insert(2, n)
            n = 1
        try:
            modules = [layer_type.module(*ctor_args) for _ in range(n)]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: cannot build {name}{tuple(ctor_args)}: {exc}") from None
        module = modules[0] if n == 1 else nn.Sequential(*modules)
        module.layer_index, module.sources = i, [f if f >= 0 else i + f for f in sources]
        module.type_name = name
        save.update(f for f in module.sources if f != i - 1)
        layers.append(module)
        channels.append(c_out)
    return nn.ModuleList(layers), sorted(save), channels[1:]
