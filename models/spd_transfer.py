"""Strided -> SPD: the SPD form of any YOLOv5, YOLOv8 or YOLO11 graph, and an exact transfer of its weights.

YOLOv5 graphs take the authors' form (rows ``Conv`` stride 1 + ``SpaceToDepth``, a Focus stem); YOLOv8 / YOLO11
graphs take ``SPDConv`` rows, in the paper's order by default (space-to-depth, then a 3 x 3 conv) or the authors'
(``conv_first``). The transfers rest on three identities of convolution (verified in tests):

* a k x k stride-2 'same' convolution equals the stride-1 convolution sampled at (2i, 2j), which is the
  first (even row, even column) channel block of :func:`models.blocks.space_to_depth` of its output. So the
  stride-1 Conv keeps the strided Conv's weights and BatchNorm, and the layer reading the space-to-depth
  output gets the old input-channel weights on that block and zeros on the other three;
* YOLOv5 v6's 6 x 6 stride-2 stem equals a Focus stem (space-to-depth + 3 x 3 conv): the inverse of
  :meth:`models.blocks.Focus.fold`;
* a k x k stride-2 kernel embeds exactly in space-to-depth + a non-strided conv (its footprint lies inside the
  2k' x 2k' one): each tap moves to the space-to-depth channel block of its row and column phase.

Everything else (C3, SPP/SPPF, Detect, anchors, BatchNorm statistics) copies with the layer-index shift.
The converted model computes exactly what the source model computes; fine-tuning can then learn to use
the three phases a strided convolution never looked at (their gradients are not zero).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.blocks import C3, SPP, SPPF, Bottleneck, Concat, Conv, SpaceToDepth, SPDConv
from models.c2f_blocks import C2f, C3k2
from models.graph_signature import build_layers, graph_difference, layer_signature
from models.head import Detect
from models.parser import ConfigError, load_config


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


DEFAULT_ORDER = "spd_first"  # the SPDConv order of YOLOv8 / YOLO11 SPD forms


def spd_config(config: str | dict, order: str | None = None) -> SpdGraph:
    """The SPD form of a config. YOLOv5 family: the 6x6 stem becomes Focus, every other stride-2 'same' Conv a
    stride-1 Conv followed by SpaceToDepth (the authors' rows), or with an ``order`` an ``SPDConv`` of it.
    Anchor-free (YOLOv8 / YOLO11): every stride-2 'same' Conv becomes an ``SPDConv`` of ``order`` (default the
    paper's). ``from`` indices are renumbered; other rows are kept (``scales:`` too)."""
    source = load_config(config)
    rows = list(source["backbone"]) + list(source["head"])
    modern = bool(rows) and isinstance(rows[-1], (list, tuple)) and len(rows[-1]) == 4 \
        and rows[-1][2] == "AnchorFreeDetect"
    builder = _SpdRows(source["_source"], order or (DEFAULT_ORDER if modern else None))
    new_backbone = 0
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ConfigError(f"{source['_source']}: layer {i} {row!r}: a row must be [from, number, module, args]")
        builder.add(i, row)
        if i < len(source["backbone"]):
            new_backbone = len(builder.rows)
    out = {k: copy.deepcopy(v) for k, v in source.items() if not k.startswith("_") and k not in ("backbone", "head")}
    if "scales" in out:  # the multiples come from the size again when the SPD config is read
        for key in ("depth_multiple", "width_multiple", "max_channels"):
            out.pop(key, None)
    out["backbone"], out["head"] = builder.rows[:new_backbone], builder.rows[new_backbone:]
    return SpdGraph(out, builder.layer_map, builder.output_map, builder.strided,
                    stem_folded=_is_v6_stem(0, rows[0][2], list(rows[0][3])))


class _SpdRows:
    """Builds the SPD rows one source row at a time, tracking where each source layer's output went."""

    def __init__(self, source: str, order: str | None = None) -> None:
        self.source = source
        self.order = order  # None: the YOLOv5 authors' rows; else SPDConv rows of this order
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
        elif self.order is not None and _is_strided_conv(name, args):
            if number != 1:
                raise ConfigError(f"{self.source}: layer {i} {row!r}: a repeated strided Conv has no SPD form")
            c2, k, _, _, rest = _conv_args(args)
            if rest:
                raise ConfigError(f"{self.source}: layer {i} {row!r}: a grouped or dilated strided Conv has no "
                                  f"SPDConv form")
            kernel = k if self.order == "conv_first" else 2 * math.ceil((k // 2) / 2) + 1
            self._append([new_from, 1, "SPDConv", [c2, kernel, self.order]])
            self.strided.append(i)
            if self.order == "conv_first":
                self.widened.add(i)
        elif self.order is None and _is_strided_conv(name, args):
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


# --------------------------------------------------------------------------------------- weight mapping
# Which parameters of a layer read which of its inputs (their dim 1 is the input's channels).
_INPUT_READERS: dict[type, tuple[str, ...]] = {
    Conv: ("conv.weight",),
    C3: ("cv1.conv.weight", "cv2.conv.weight"),
    C2f: ("cv1.conv.weight",),
    C3k2: ("cv1.conv.weight",),
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
        """Whether every tensor moved exactly (the SPD model computes what the source did)."""
        return self.mode in ("same graph", "spd") and not self.skipped

    def line(self, source: str) -> str:
        """The one log line of the transfer, naming ``source``."""
        kind = {"same graph": "same graph", "spd": "strided -> SPD", "shared": "the layers both graphs share",
                "partial": "structure-matched where possible"}[self.mode]
        if self.function_preserving:
            note = "exact, function-preserving"
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


def _strided_kernel_on_space_to_depth(weight: torch.Tensor) -> torch.Tensor:
    """A k x k stride-2 'same' kernel (o, c, k, k), k odd, as the kernel of space-to-depth + a stride-1 k' x k'
    'same' conv (o, 4c, k', k') with k' = 2 ceil(k // 2 / 2) + 1 that computes the same output: input row
    2i - p + a (p = k // 2) is space-to-depth row i + (a - p) // 2, phase (a - p) % 2; columns alike. Channel
    block of phase (row, col): 2 col + row (:func:`models.blocks.space_to_depth`)."""
    o, c, k, _ = weight.shape
    p = k // 2
    half = math.ceil(p / 2)
    out = weight.new_zeros((o, 4 * c, 2 * half + 1, 2 * half + 1))
    for a in range(k):
        row_tap, row_phase = (a - p) // 2 + half, (a - p) % 2
        for b in range(k):
            col_tap, col_phase = (b - p) // 2 + half, (b - p) % 2
            block = 2 * col_phase + row_phase
            out[:, block * c:(block + 1) * c, row_tap, col_tap] = weight[:, :, a, b]
    return out


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
        elif isinstance(layer, SPDConv) and layer.order == "conv_first":  # its even-row, even-column block
            embeddings.append(torch.arange(layer.conv.conv.out_channels))
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
    order = next((m.order for m in target.model if isinstance(m, SPDConv)), None)
    graph = spd_config(source_cfg, order)
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
    source_layers, _ = build_layers(source_cfg, int(source_cfg.get("nc", nc)))
    if target_spd and not any(isinstance(m, SpaceToDepth) for m in source_layers):
        graph = spd_config(source_cfg)
        middle = DetectionModel(graph.config, nc=int(source_cfg.get("nc", nc)))
        source_state = {**middle.state_dict(), **_map_to_spd(source_state, source_cfg, graph, middle)}
        source_layers = middle.model
    return align_state(source_state, source_layers, target.model, layer_signature)


def _copy_matching(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], list[str]]:
    moved = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    skipped = sorted(k for k in own if k not in moved and not k.endswith("num_batches_tracked"))
    return moved, skipped


def _map_to_spd(source_state: dict[str, torch.Tensor], source_cfg: dict, graph: SpdGraph,
                target: nn.Module) -> dict[str, torch.Tensor]:
    """Source tensors renamed and re-laid out for the target's layers."""
    layers = target.model
    _, target_channels = build_layers(dict(target.yaml), int(target.nc))
    _, source_channels = build_layers(source_cfg, int(target.nc))
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
        if isinstance(layer, SPDConv):  # a strided Conv -> SPDConv: its Conv one level deeper
            spd_first = layer.order == "spd_first"
            state = {f"conv.{k}": (_strided_kernel_on_space_to_depth(v) if spd_first and k == "conv.weight" else v)
                     for k, v in state.items()}
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
    if isinstance(layer, SPDConv):  # conv_first reads its input as a Conv does; spd_first would need a re-layout
        return {0: ("conv.conv.weight",)} if layer.order == "conv_first" else {}
    for kind, names in _INPUT_READERS.items():
        if type(layer) is kind:
            if isinstance(layer, Conv) and layer.conv.groups != 1:
                return {}
            return {0: names}
    return {}


def main(argv: list[str] | None = None) -> None:
    """``python -m models.spd_transfer yolo11.yaml yolo11_spd.yaml``: write a config's SPD form."""
    import argparse

    from utils.faces import run_face

    parser = argparse.ArgumentParser(description="Write the SPD form of a model config. YOLOv5 family: the 6x6 "
                                     "stride-2 stem becomes Focus, every other stride-2 Conv a stride-1 Conv + "
                                     "SpaceToDepth. YOLOv8 / YOLO11 (P2 forms too): every stride-2 Conv becomes an "
                                     "SPDConv of --order. 'from' indices are renumbered. Weights of the source "
                                     "config then move into it exactly (train.py --weights, "
                                     "python -m utils.deploy.convert_weights).")
    parser.add_argument("source", help="model YAML (path or name in configs/)")
    parser.add_argument("destination", help="where to write the SPD config (an existing file is not replaced)")
    parser.add_argument("--order", default=None, choices=["spd_first", "conv_first"],
                        help="SPDConv rows of this order: the paper's space-to-depth -> conv, or the YOLOv5-SPD "
                             "authors' conv -> space-to-depth (default: spd_first for YOLOv8 / YOLO11, the authors' "
                             "Conv + SpaceToDepth rows for YOLOv5 graphs)")
    run_face(_write_spd_config, parser.parse_args(argv))


def _write_spd_config(args) -> None:
    from pathlib import Path

    from models.parser import resolve_config_path

    source = resolve_config_path(args.source)
    graph = spd_config(source, args.order)
    out = Path(args.destination)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another name")
    made = "SPDConv rows" if any(r[2] == "SPDConv" for r in graph.config["head"] + graph.config["backbone"]) \
        else "Focus / stride-1 Conv + SpaceToDepth"
    header = (f"SPD form of {source.name}, written by `python -m models.spd_transfer {source.name} {out.name}`.\n"
              f"{len(graph.strided)} stride-2 Convs (source layers {graph.strided}) became {made};\n"
              f"weights of {source.name} map into it exactly.")
    config = dict(graph.config)
    if "scales" in config:  # the file serves every size: the size comes from the name it is asked for
        config.pop("scale", None)
    out.write_text(config_to_yaml(config, header), encoding="utf-8")
    print(f"wrote {out} ({len(graph.config['backbone']) + len(graph.config['head'])} layers)")


if __name__ == "__main__":
    main()
