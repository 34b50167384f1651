"""YOLO YAML model configs (YOLOv5, YOLOv5-SPD, YOLOv8, YOLO11) -> a list of layers.

A config row is ``[from, number, module, args]``. One registry maps each module name to its class and a
*channel rule*: how the constructor arguments and the output channels follow from the input channels.
Nothing in a config is evaluated as code: the only symbolic arguments are ``nc``, ``anchors`` and ``None``.

A config may hold several sizes as ultralytics' YAMLs do: ``scales: {n: [depth, width, max_channels], ...}``,
the size picked by ``scale:`` or by the name it was asked for (``yolo11n`` reads ``yolo11.yaml`` at size n).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from models.anchor_free_head import AnchorFreeDetect
from models.attention import C2PSA, CBAM, SE
from models.blocks import C3, SPD_ORDERS, SPP, SPPF, Bottleneck, Concat, Conv, Focus, SpaceToDepth, SPDConv
from models.c2f_blocks import C2f, C3k2, DWConv
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
    max_channels: float = math.inf  # a ``scales:`` row's cap, applied before the width multiple


# A channel rule returns (constructor args, output channels).
ChannelRule = Callable[[list[Any], BuildContext], tuple[list[Any], int]]


def _scaled_out(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    """Conv-like: args = [c2, ...]; c1 is prepended, c2 scaled by the width multiple."""
    if not args or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        raise ConfigError("needs the output channels (a number) as its first argument")
    c2 = make_divisible(min(args[0], ctx.max_channels) * ctx.width)
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


def _spd_conv(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    """SPDConv: args = [c2, (k 3), (order spd_first)]; conv_first outputs 4 x c2 channels."""
    ctor_args, c2 = _scaled_out(args, ctx)
    order = args[2] if len(args) > 2 else "spd_first"
    if order not in SPD_ORDERS:
        raise ConfigError(f"SPDConv's order must be one of {', '.join(SPD_ORDERS)}, got {order!r}")
    return ctor_args, 4 * c2 if order == "conv_first" else c2


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


def _anchor_free_detect(args: list[Any], ctx: BuildContext) -> tuple[list[Any], int]:
    """AnchorFreeDetect: args = [nc, (reg_max 16), (depth-wise class branch False)]; the inputs' channels last."""
    if not 1 <= len(args) <= 3 or isinstance(args[0], bool) or not isinstance(args[0], int) or args[0] < 1:
        raise ConfigError("AnchorFreeDetect takes [nc], [nc, reg_max] or [nc, reg_max, depthwise_cls]")
    nc, reg_max, depthwise = (list(args) + [16, False][len(args) - 1:])[:3]
    if isinstance(reg_max, bool) or not isinstance(reg_max, int) or not 1 <= reg_max <= 64:
        raise ConfigError(f"AnchorFreeDetect's reg_max must be a whole number in [1, 64], got {reg_max!r}")
    return [nc, reg_max, bool(depthwise), list(ctx.in_channels)], 0


def _single_input(ctx: BuildContext) -> int:
    if len(ctx.in_channels) != 1:
        raise ConfigError(f"takes one input, got {len(ctx.in_channels)}")
    return ctx.in_channels[0]


@dataclass(frozen=True)
class LayerType:
    """How the parser builds one registry layer: its module, how its output channels follow from the row, whether
    repeats go inside it."""
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
    "SPDConv": LayerType(SPDConv, _spd_conv),
    "SpaceToDepth": LayerType(SpaceToDepth, _times_four),
    "space_to_depth": LayerType(SpaceToDepth, _times_four),  # the authors' spelling
    "Concat": LayerType(Concat, _sum_channels),
    "nn.Upsample": LayerType(nn.Upsample, _same_channels),
    "Upsample": LayerType(nn.Upsample, _same_channels),
    "Detect": LayerType(Detect, _detect),
    "AnchorFreeDetect": LayerType(AnchorFreeDetect, _anchor_free_detect),
    "DWConv": LayerType(DWConv, _scaled_out),
    "C2f": LayerType(C2f, _scaled_out, repeats_inside=True),
    "C3k2": LayerType(C3k2, _scaled_out, repeats_inside=True),
    "C2PSA": LayerType(C2PSA, _scaled_out, repeats_inside=True),
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
    raise ConfigError(f"{cfg}: model config not found (available in configs/: {_available()})")


def load_config(cfg: str | Path | dict) -> dict:
    """Read a model config (path, bare name or dict) and check its top-level keys; a ``scales:`` config gets
    the multiples of its size."""
    scale = None
    if isinstance(cfg, dict):
        config, source = dict(cfg), "<dict>"
    else:
        path, scale = _resolve_scaled(cfg)
        source = str(path)
        config = load_yaml_mapping(path, ConfigError)
    for key in ("backbone", "head"):
        if not isinstance(config.get(key), list):
            raise ConfigError(f"{source}: missing or invalid '{key}' list")
    if "scales" in config:
        _apply_scale(config, scale or config.get("scale"), source)
    config.setdefault("depth_multiple", 1.0)
    config.setdefault("width_multiple", 1.0)
    config.setdefault("nc", 80)
    config.setdefault("ch", 3)
    config["_source"] = source
    _check_scalars(config, source)
    _translate_ultralytics_head(config, source)
    return config


def _resolve_scaled(cfg: str | Path) -> tuple[Path, str | None]:
    """A config file, or for a name like ``yolo11n`` / ``yolo11n_spd`` the ``scales:`` file ``yolo11.yaml`` /
    ``yolo11_spd.yaml`` and the size ``n``."""
    try:
        return resolve_config_path(cfg), None
    except ConfigError:
        stem = Path(str(cfg)).name.removesuffix(".yaml")
        match = re.fullmatch(r"(.*\d)([nsmlx])((?:_[A-Za-z0-9]+)*)", stem)
        if match is None or Path(str(cfg)).parent != Path("."):
            raise
        family_name = match.group(1) + match.group(3)
        try:
            family = resolve_config_path(family_name)
        except ConfigError:
            raise ConfigError(f"{cfg}: model config not found, nor {family_name}.yaml with size '{match.group(2)}' "
                              f"(available in configs/: {_available()})") from None
        return family, match.group(2)


def _apply_scale(config: dict, scale: str | None, source: str) -> None:
    scales = config["scales"]
    if not isinstance(scales, dict) or not scales:
        raise ConfigError(f"{source}: 'scales' must map a size letter to [depth, width, max_channels]")
    if scale is None:
        scale = next(iter(scales))
        from utils.logging import LOGGER

        LOGGER.warning(f"{source}: no size given, using '{scale}' of {sorted(scales)} (name the size, "
                       f"e.g. {Path(source).stem}{scale}.yaml)")
    row = scales.get(scale)
    if not isinstance(row, (list, tuple)) or len(row) != 3:
        raise ConfigError(f"{source}: size '{scale}' is not one of its scales {sorted(scales)}")
    config["depth_multiple"], config["width_multiple"], config["max_channels"] = row
    config["scale"] = scale


def _translate_ultralytics_head(config: dict, source: str) -> None:
    """ultralytics' row ``Detect, [nc]`` (no anchors) is their anchor-free head: the same layer here is
    AnchorFreeDetect, with their rule for the class branch (depth-wise when the graph has C3k2 rows, i.e.
    YOLO11) and their reg_max. NMS-free (end2end) heads are not built here."""
    rows = list(config["backbone"]) + list(config["head"])
    last = rows[-1] if rows else None
    if not (isinstance(last, list) and len(last) == 4 and last[2] == "Detect" and isinstance(last[3], list)
            and len(last[3]) == 1 and "anchors" not in config):
        return
    if config.get("end2end"):
        raise ConfigError(f"{source}: an NMS-free (end2end) head, which this project does not build; "
                          f"supported: YOLOv5, YOLOv5-SPD, YOLOv8 and YOLO11 detection")
    depthwise = any(isinstance(r, list) and len(r) == 4 and r[2] == "C3k2" for r in rows)
    reg_max = config.get("reg_max", 16)
    config["head"] = [*config["head"][:-1], [last[0], last[1], "AnchorFreeDetect", [last[3][0], reg_max, depthwise]]]


def _available() -> str:
    return ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("hyp")))


# Sane ranges: a config (or a checkpoint's) outside them would build a model too large to allocate.
_LIMITS = {"depth_multiple": (0.0, 4.0), "width_multiple": (0.0, 4.0), "nc": (1, 100_000), "ch": (1, 64),
           "max_channels": (1, 100_000)}


def _check_scalars(config: dict, source: str) -> None:
    for key, (low, high) in _LIMITS.items():
        if key not in config:
            continue
        value = config[key]
        integral = key in ("nc", "ch", "max_channels")
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
        ctx = BuildContext(in_channels, width, int(config["nc"]), config.get("anchors"),
                           config.get("max_channels", math.inf))
        try:
            ctor_args, c_out = layer_type.channels(args, ctx)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        n = max(round(number * depth), 1) if number > 1 else number
        if layer_type.repeats_inside:
            ctor_args.insert(2, n)
            n = 1
        if name == "C3k2" and str(config.get("scale", "")) in ("m", "l", "x"):  # ultralytics' rule for YOLO11
            ctor_args[3:4] = [True]
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
