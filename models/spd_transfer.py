"""YOLOv5 -> YOLOv5-SPD: the SPD form of any YOLOv5-family graph, and an exact transfer of its weights.

Both rest on two identities of convolution (verified to the bit in tests):

* a k x k stride-2 'same' convolution equals the stride-1 convolution sampled at (2i, 2j), which is the
  first (even row, even column) channel block of :func:`models.blocks.space_to_depth` of its output. So the
  stride-1 Conv keeps the strided Conv's weights and BatchNorm, and the layer reading the space-to-depth
  output gets the old input-channel weights on that block and zeros on the other three;
* YOLOv5 v6's 6 x 6 stride-2 stem equals a Focus stem (space-to-depth + 3 x 3 conv): the inverse of
  :meth:`models.blocks.Focus.fold`.

Everything else (C3, SPP/SPPF, Detect, anchors, BatchNorm statistics) copies with the layer-index shift.
The converted model computes exactly what the source model computes; fine-tuning can then learn to use
the three phases a strided convolution never looked at (their gradients are not zero).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.blocks import C3, SPP, SPPF, Bottleneck, Concat, Conv, Focus, SpaceToDepth
from models.head import Detect
from models.parser import ConfigError, load_config, parse_model


class TransferError(ValueError):
    """Weights that cannot be mapped exactly onto the target graph; the message names the layer."""


# ------------------------------------------------------------------------------------- graph conversion
def _conv_args(args: list[Any]) -> tuple[Any, int, int, Any, list[Any]]:
    """Conv args [c2, k=1, s=1, p=None, *rest] -> (c2, k, s, p, rest)."""
    c2, k, s, p, *rest = list(args) + [1, 1, None][len(args) - 1:]
    return c2, k, s, p, rest


def _is_strided_conv(name: str, args: list[Any]) -> bool:
    if name != "Conv" or len(args) < 3:
        return False
    _, k, s, p, rest = _conv_args(args)
    dilation = rest[1] if len(rest) > 1 else 1
    return s == 2 and isinstance(k, int) and k % 2 == 1 and p in (None, k // 2) and dilation == 1


def _is_v6_stem(index: int, name: str, args: list[Any]) -> bool:
    """Layer 0 ``Conv [c, 2k, 2, 2(k//2)]`` with k odd (YOLOv5 v6: Conv [64, 6, 2, 2]) equals Focus [c, k]."""
    if index != 0 or name != "Conv" or len(args) < 4:
        return False
    _, k, s, p, rest = _conv_args(args)
    half = k // 2 if isinstance(k, int) and k % 2 == 0 else 0
    return s == 2 and half % 2 == 1 and p == 2 * (half // 2) and all(v == 1 for v in rest[:2])


@dataclass
class SpdGraph:
    """The SPD form of a config and how its layers relate to the source's."""

    config: dict
    layer_map: list[int]  # source layer i -> the target layer holding its weights
    output_map: list[int]  # source layer i -> the target layer whose output equals source layer i's
    strided: list[int] = field(default_factory=list)  # source layers that became Conv + SpaceToDepth
    stem_folded: bool = False  # layer 0 was a 6x6 stride-2 Conv, now a Focus


def spd_config(config: str | dict) -> SpdGraph:
    """The SPD form of a YOLOv5-family config: the 6x6 stem becomes Focus, every other stride-2 'same'
    Conv a stride-1 Conv followed by SpaceToDepth; ``from`` indices are renumbered. Other rows are kept."""
    source = load_config(config)
    rows = list(source["backbone"]) + list(source["head"])
    builder = _SpdRows(source["_source"])
    new_backbone = 0
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ConfigError(f"{source['_source']}: layer {i} {row!r}: a row must be [from, number, module, args]")
        builder.add(i, row)
        if i < len(source["backbone"]):
            new_backbone = len(builder.rows)
    out = {k: copy.deepcopy(v) for k, v in source.items() if not k.startswith("_") and k not in ("backbone", "head")}
    out["backbone"], out["head"] = builder.rows[:new_backbone], builder.rows[new_backbone:]
    return SpdGraph(out, builder.layer_map, builder.output_map, builder.strided,
                    stem_folded=_is_v6_stem(0, rows[0][2], list(rows[0][3])))


class _SpdRows:
    """Builds the SPD rows one source row at a time, tracking where each source layer's output went."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[list[Any]] = []
        self.layer_map: list[int] = []
        self.output_map: list[int] = []
        self.strided: list[int] = []
        self.widened: set[int] = set()  # source layers whose output becomes 4x wider (a space-to-depth output)
        self.mixed: set[int] = set()  # ... or partly wider (a Concat with such an input)

    def add(self, i: int, row: list[Any]) -> None:
        frm, number, name, args = row
        sources = [frm] if isinstance(frm, int) else list(frm)
        mapped = [f if f == -1 else self.output_map[f if f >= 0 else i + f] for f in sources]
        new_from: Any = mapped[0] if isinstance(frm, int) else mapped
        args = self._track_widths(i, row, [f if f >= 0 else i + f for f in sources])
        if _is_v6_stem(i, name, args):
            self._append([new_from, number, "Focus", [args[0], args[1] // 2]])
        elif _is_strided_conv(name, args):
            if number != 1:
                raise ConfigError(f"{self.source}: layer {i} {row!r}: a repeated strided Conv has no SPD form")
            c2, k, _, p, rest = _conv_args(args)
            self.rows.append([new_from, 1, "Conv", [c2, k, 1, p, *rest] if rest or p is not None else [c2, k, 1]])
            self.layer_map.append(len(self.rows) - 1)
            self.rows.append([-1, 1, "SpaceToDepth", [1]])
            self.output_map.append(len(self.rows) - 1)
            self.strided.append(i)
            self.widened.add(i)
        else:
            self._append([new_from, number, name, args])

    def _append(self, row: list[Any]) -> None:
        self.rows.append(row)
        self.layer_map.append(len(self.rows) - 1)
        self.output_map.append(len(self.rows) - 1)

    def _track_widths(self, i: int, row: list[Any], absolute: list[int]) -> list[Any]:
        """Follow 4x-wider outputs through Upsample and Concat; an SPP reading one keeps the source's hidden
        width (a quarter of its hidden fraction). Returns the row's (possibly adjusted) args."""
        name, args = row[2], list(row[3])
        wide, mixed = self.widened, self.mixed
        if name in ("nn.Upsample", "Upsample") and absolute[0] in wide | mixed:
            (wide if absolute[0] in wide else mixed).add(i)
        elif name == "Concat" and any(j in wide | mixed for j in absolute):
            mixed.add(i)
        elif name in ("SPP", "SPPF") and absolute[0] in wide:
            default = [[5, 9, 13] if name == "SPP" else 5, 0.5]
            k, e = (args[1:] + default[len(args) - 1:])[:2]
            args = [args[0], k, e / 4]
        elif name in ("SPP", "SPPF") and absolute[0] in mixed:
            raise ConfigError(f"{self.source}: layer {i} {row!r}: an SPP over a partly space-to-depth input has "
                              f"no exact SPD form")
        return args


def config_to_yaml(config: dict, header: str = "") -> str:
    """A config as YAML with one row per line (the layout of the shipped configs)."""
    import yaml

    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in config.items():
        if key in ("backbone", "head", "anchors"):
            continue
        lines.append(f"{key}: {value}")
    if "anchors" in config:
        anchors = config["anchors"]
        lines.append("anchors:" if isinstance(anchors, list) else f"anchors: {anchors}")
        if isinstance(anchors, list):
            lines += [f"  - {yaml.safe_dump(a, default_flow_style=True).strip()}" for a in anchors]
    index = 0
    for part in ("backbone", "head"):
        lines.append(f"{part}:")
        for row in config[part]:
            text = yaml.safe_dump(row, default_flow_style=True, width=10_000).strip()
            lines.append(f"  - {text}  # {index}")
            index += 1
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- comparing built graphs
def _signature(layer: nn.Module) -> tuple:
    """What must agree between two layers for weights to mean the same thing in both."""
    kind = type(layer).__name__
    parts: list[Any] = []
    if isinstance(layer, SPPF):
        parts = [("pool", layer.m.kernel_size)]
    elif isinstance(layer, SPP) and len(layer.m) == 3:
        k = [pool.kernel_size for pool in layer.m]
        if k == [k[0], 2 * k[0] - 1, 3 * k[0] - 2]:  # SPP(k, 2k-1, 3k-2) == SPPF(k): chained pools
            kind, parts = "SPPF", [("pool", k[0])]
    for name, sub in layer.named_modules():
        if isinstance(sub, nn.Conv2d):
            parts.append((name, sub.in_channels, sub.out_channels, sub.kernel_size, sub.stride, sub.padding,
                          sub.dilation, sub.groups, sub.bias is not None))
        elif isinstance(sub, nn.BatchNorm2d):
            parts.append((name, sub.num_features, sub.eps))
        elif isinstance(sub, nn.MaxPool2d):
            if kind != "SPPF":
                parts.append((name, sub.kernel_size, sub.stride, sub.padding))
        elif isinstance(sub, nn.Upsample):
            parts.append((name, sub.scale_factor, sub.size, sub.mode))
        elif isinstance(sub, Bottleneck):
            parts.append((name, sub.add))
        elif isinstance(sub, (Concat, SpaceToDepth)):
            parts.append((name, sub.d))
        elif isinstance(sub, Detect):
            parts.append((name, sub.nc, sub.na, sub.nl))
        elif isinstance(sub, nn.SiLU | nn.Identity | nn.Sequential | nn.ModuleList | Conv | Focus):
            continue
        elif sub is not layer:
            parts.append((name, type(sub).__name__))
    return (kind, tuple(layer.sources), tuple(parts))


def _describe(config: dict, index: int) -> str:
    rows = list(config["backbone"]) + list(config["head"])
    return f"{rows[index]!r}" if index < len(rows) else "(none)"


def _build(config: dict, nc: int) -> tuple[nn.ModuleList, list[int]]:
    config = load_config({**copy.deepcopy(config), "nc": nc})
    layers, _, channels = parse_model(config)
    return layers, channels


def graph_difference(expected_cfg: dict, target_cfg: dict, nc: int, expected_name: str = "expected",
                     target_name: str = "target") -> str | None:
    """None when the two configs build the same graph (up to SPP(5,9,13) == SPPF(5)), else one line
    naming the first layer that differs."""
    expected, _ = _build(expected_cfg, nc)
    target, _ = _build(target_cfg, nc)
    for i in range(max(len(expected), len(target))):
        if i >= len(expected) or i >= len(target) or _signature(expected[i]) != _signature(target[i]):
            return (f"layer {i} differs: {target_name} has {_describe(target_cfg, i)}, "
                    f"{expected_name} needs {_describe(expected_cfg, i)}")
    return None


# --------------------------------------------------------------------------------------- weight mapping
# Which parameters of a layer read which of its inputs (their dim 1 is the input's channels).
_INPUT_READERS: dict[type, tuple[str, ...]] = {
    Conv: ("conv.weight",),
    C3: ("cv1.conv.weight", "cv2.conv.weight"),
    Bottleneck: ("cv1.conv.weight",),
    SPP: ("cv1.conv.weight",),
    SPPF: ("cv1.conv.weight",),
}
_PASS_THROUGH = (nn.Upsample,)


@dataclass
class TransferReport:
    """What a transfer did: tensors moved, of how many, and whether the target computes what the source did."""

    transferred: int
    total: int
    mode: str  # "same graph", "spd", "shared" (every source tensor placed in a larger graph), "partial"
    skipped: list[str] = field(default_factory=list)

    @property
    def function_preserving(self) -> bool:
        return self.mode in ("same graph", "spd") and not self.skipped

    def line(self, source: str) -> str:
        kind = {"same graph": "same graph", "spd": "YOLOv5 -> SPD", "shared": "the layers both graphs share",
                "partial": "structure-matched where possible"}[self.mode]
        if self.function_preserving:
            note = "function-preserving"
        elif self.mode == "shared":
            note = f"{len(self.skipped)} new tensors freshly initialised, e.g. {self.skipped[0]}" if self.skipped \
                else "every tensor placed"
        elif self.mode == "partial":
            note = "NOT function-preserving: the rest is freshly initialised"
        else:
            note = f"{len(self.skipped)} tensors of another shape re-initialised, e.g. {self.skipped[0]}"
        return f"transferred {self.transferred}/{self.total} tensors from {source} ({kind}; {note})"


def _unfold_stem(weight: torch.Tensor) -> torch.Tensor:
    """6x6 stride-2 stem weights (o, c, 2k, 2k) -> Focus conv weights (o, 4c, k, k); inverse of Focus.fold."""
    o, c, kh2, kw2 = weight.shape
    kh, kw = kh2 // 2, kw2 // 2
    # folded[o, ch, 2 i + row, 2 j + col] -> w[o, (2 col + row) c + ch, i, j]
    w = weight.reshape(o, c, kh, 2, kw, 2).permute(0, 5, 3, 1, 2, 4)
    return w.reshape(o, 4 * c, kh, kw)


def _embed_input(weight: torch.Tensor, index: torch.Tensor, channels: int) -> torch.Tensor:
    out = weight.new_zeros((weight.shape[0], channels, *weight.shape[2:]))
    out[:, index] = weight
    return out


def _output_embeddings(target: nn.ModuleList, target_channels: list[int], source_channels_of: list[int | None]
                       ) -> list[torch.Tensor | None]:
    """For each target layer, where the source's channels sit in its output (None: one to one)."""
    embeddings: list[torch.Tensor | None] = []
    for t, layer in enumerate(target):
        inputs = [embeddings[j] for j in layer.sources] if t else [None]
        if isinstance(layer, SpaceToDepth):
            c = target_channels[layer.sources[0]]
            embeddings.append(torch.arange(c) if inputs[0] is None else inputs[0])
        elif isinstance(layer, Concat):
            parts, offset, shifted = [], 0, False
            for j, emb in zip(layer.sources, inputs):
                width = source_channels_of[j] if source_channels_of[j] is not None else target_channels[j]
                parts.append((emb if emb is not None else torch.arange(width)) + offset)
                shifted |= emb is not None
                offset += target_channels[j]
            embeddings.append(torch.cat(parts) if shifted else None)
        elif isinstance(layer, _PASS_THROUGH):
            embeddings.append(inputs[0])
        else:
            embeddings.append(None)
    return embeddings


def transfer_state(source_state: dict[str, torch.Tensor], source_cfg: dict, target: nn.Module,
                   allow_partial: bool = False) -> TransferReport:
    """Load ``source_state`` (a model built from ``source_cfg``) into ``target`` (a DetectionModel).

    Same graph: tensors copy by name (shape-matched, so a new class count re-initialises the head rows).
    Target == SPD form of the source: the exact mapping of this module's docstring. Anything else raises
    :class:`TransferError` naming the first layer that differs, unless ``allow_partial`` (then tensors of
    the same name and shape are copied and the report says how few).
    """
    target_cfg = dict(target.yaml)
    nc = int(target.nc)
    own = target.state_dict()
    if graph_difference(source_cfg, target_cfg, nc) is None:
        moved, skipped = _copy_matching(source_state, own)
        target.load_state_dict(moved, strict=False)
        return TransferReport(len(moved), len(own), "same graph", skipped)
    graph = spd_config(source_cfg)
    problem = graph_difference(graph.config, target_cfg, nc, "the SPD form of the source",
                               "the target config")
    if problem is not None:
        aligned = _aligned(source_state, source_cfg, target)
        if aligned.unplaced and not allow_partial:
            raise TransferError(f"cannot map the weights exactly: {problem}; {len(aligned.unplaced)} source "
                                f"tensors have no counterpart in the target either (e.g. {aligned.unplaced[0]})")
        target.load_state_dict(aligned.state, strict=False)
        new = sorted(k for k in own if k not in aligned.state and not k.endswith("num_batches_tracked"))
        return TransferReport(len(aligned.state), len(own), "shared" if not aligned.unplaced else "partial", new)
    mapped = _map_to_spd(source_state, source_cfg, graph, target)
    moved, skipped = _copy_matching(mapped, own)
    target.load_state_dict(moved, strict=False)
    return TransferReport(len(moved), len(own), "spd", skipped)


def _aligned(source_state: dict[str, torch.Tensor], source_cfg: dict, target: nn.Module):
    """The source aligned by structure onto the target (:mod:`models.graph_alignment`); through the source's
    exact SPD form when the target has space-to-depth layers and the source none."""
    from models.graph_alignment import align_state
    from models.yolo import DetectionModel

    nc = int(target.nc)
    target_spd = any(isinstance(m, SpaceToDepth) for m in target.model)
    source_layers, _ = _build(source_cfg, int(source_cfg.get("nc", nc)))
    if target_spd and not any(isinstance(m, SpaceToDepth) for m in source_layers):
        graph = spd_config(source_cfg)
        middle = DetectionModel(graph.config, nc=int(source_cfg.get("nc", nc)))
        source_state = {**middle.state_dict(), **_map_to_spd(source_state, source_cfg, graph, middle)}
        source_layers = middle.model
    return align_state(source_state, source_layers, target.model, _signature)


def _copy_matching(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], list[str]]:
    moved = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    skipped = sorted(k for k in own if k not in moved and not k.endswith("num_batches_tracked"))
    return moved, skipped


def _map_to_spd(source_state: dict[str, torch.Tensor], source_cfg: dict, graph: SpdGraph,
                target: nn.Module) -> dict[str, torch.Tensor]:
    """Source tensors renamed and re-laid out for the target's layers."""
    layers = target.model
    _, target_channels = _build(dict(target.yaml), int(target.nc))
    _, source_channels = _build(source_cfg, int(target.nc))
    # The source width of each target output (only outputs that exist in the source count for Concat).
    source_width: list[int | None] = [None] * len(layers)
    for i, t in enumerate(graph.output_map):
        source_width[t] = source_channels[i]
    embeddings = _output_embeddings(layers, target_channels, source_width)
    mapped: dict[str, torch.Tensor] = {}
    for i, t in enumerate(graph.layer_map):
        prefix, new_prefix = f"model.{i}.", f"model.{t}."
        layer = layers[t]
        state = {k[len(prefix):]: v for k, v in source_state.items() if k.startswith(prefix)}
        if i == 0 and graph.stem_folded:  # Conv 6x6 s2 -> Focus: the Conv sits one level deeper
            state = {f"conv.{k}": (_unfold_stem(v) if k == "conv.weight" else v) for k, v in state.items()}
        readers = _readers(layer)
        if isinstance(layer, (Concat, SpaceToDepth, *_PASS_THROUGH)):
            continue  # no weights; _output_embeddings carries the channel layout through
        for j, src in enumerate(layer.sources):
            emb = embeddings[src]
            if emb is None:
                continue
            names = readers.get(j)
            if names is None:
                raise TransferError(f"layer {t} ({type(layer).__name__}) reads a space-to-depth output, "
                                    f"which has no exact mapping for this layer type")
            for name in names:
                if name in state:
                    state[name] = _embed_input(state[name], emb, target_channels[src])
        mapped.update({new_prefix + k: v for k, v in state.items()})
    return mapped


def _readers(layer: nn.Module) -> dict[int, tuple[str, ...]]:
    """Input index -> the parameter names whose dim 1 reads that input."""
    if isinstance(layer, Detect):
        return {j: (f"m.{j}.weight",) for j in range(layer.nl)}
    if isinstance(layer, Bottleneck) and layer.add:
        return {}  # a residual over a widened input is not the same function
    for kind, names in _INPUT_READERS.items():
        if type(layer) is kind:
            if isinstance(layer, Conv) and layer.conv.groups != 1:
                return {}
            return {0: names}
    return {}


def main(argv: list[str] | None = None) -> None:
    """``python -m models.spd_transfer yolov5n_p2.yaml space_depth_n_p2.yaml``: write a config's SPD form."""
    import argparse
    from pathlib import Path

    from models.parser import resolve_config_path

    parser = argparse.ArgumentParser(description="Write the SPD form of a YOLOv5-family model config: the 6x6 "
                                     "stride-2 stem becomes Focus, every other stride-2 Conv a stride-1 Conv + "
                                     "SpaceToDepth, 'from' indices renumbered. Weights of the source config then "
                                     "move into it exactly (train.py --weights, "
                                     "python -m utils.deploy.convert_weights).")
    parser.add_argument("source", help="YOLOv5-family model YAML (path or name in configs/)")
    parser.add_argument("destination", help="where to write the SPD config (an existing file is not replaced)")
    args = parser.parse_args(argv)
    try:
        source = resolve_config_path(args.source)
        graph = spd_config(source)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    out = Path(args.destination)
    if out.exists():
        raise SystemExit(f"error: {out} exists; choose another name")
    header = (f"SPD form of {source.name}, written by `python -m models.spd_transfer {source.name} {out.name}`.\n"
              f"The stem and {len(graph.strided)} stride-2 Convs (source layers {graph.strided}) became\n"
              f"Focus / stride-1 Conv + SpaceToDepth; weights of {source.name} map into it exactly.")
    out.write_text(config_to_yaml(graph.config, header), encoding="utf-8")
    print(f"wrote {out} ({len(graph.config['backbone']) + len(graph.config['head'])} layers)")


if __name__ == "__main__":
    main()
