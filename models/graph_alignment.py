"""Weights between two graphs that share most of their layers but not their numbering, e.g. yolov5n.pt into
yolov5n_p2.yaml (a P2 branch inserted in the neck shifts every later row) or into space_depth_n_p2.yaml.

The layers are aligned by structure: the longest common subsequence of the two layer lists, two layers
matching when they are of one kind with the same convolutions, norms and settings (their ``from`` indices may
differ). Detect is aligned level by level the same way. Matched layers take the source's tensors; the rest
(the new branch, a head of another class count) keeps its fresh initialisation. A target reached through the
SPD form of the source (space_depth_*_p2.yaml from yolov5*.pt) first takes the exact SPD mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from models.head import Detect


def _kind(signature: tuple) -> tuple:
    """A layer signature without its ``from`` indices."""
    kind, _sources, parts = signature
    return kind, parts


def longest_common_pairs(a: list, b: list) -> list[tuple[int, int]]:
    """Index pairs (i, j) of a longest common subsequence of ``a`` and ``b`` (equal items), in order."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


@dataclass
class Alignment:
    """Source tensors renamed into the target, and what had no counterpart."""

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    unplaced: list[str] = field(default_factory=list)  # source tensors (outside a re-sized head) left behind
    layer_pairs: list[tuple[int, int]] = field(default_factory=list)


def _detect_levels(source: Detect, target: Detect) -> list[tuple[int, int]]:
    """Matched output levels, by the channels each reads (a P2 level has fewer than the P3 one)."""
    return longest_common_pairs([c.in_channels for c in source.m], [c.in_channels for c in target.m])


def align_state(source_state: dict[str, torch.Tensor], source_layers: nn.ModuleList, target_layers: nn.ModuleList,
                signature) -> Alignment:
    """Map ``source_state`` (keys ``model.<i>.…`` of ``source_layers``) onto ``target_layers`` by structure;
    ``signature(layer)`` is the comparison key of :mod:`models.graph_signature`."""
    body_s = [i for i, layer in enumerate(source_layers) if not isinstance(layer, Detect)]
    body_t = [j for j, layer in enumerate(target_layers) if not isinstance(layer, Detect)]
    pairs = [(body_s[a], body_t[b]) for a, b in longest_common_pairs(
        [_kind(signature(source_layers[i])) for i in body_s], [_kind(signature(target_layers[j])) for j in body_t])]
    out = Alignment(layer_pairs=pairs)
    own = {f"model.{j}.{k}": v for j, layer in enumerate(target_layers) for k, v in layer.state_dict().items()}
    used: set[str] = set()

    def put(old: str, new: str, value: torch.Tensor | None = None) -> None:
        value = source_state[old] if value is None else value
        if new in own and own[new].shape == value.shape:
            out.state[new] = value
            used.add(old)

    for i, j in pairs:
        for key in source_layers[i].state_dict():
            if f"model.{i}.{key}" in source_state:
                put(f"model.{i}.{key}", f"model.{j}.{key}")
    head_keys = set()
    for i, source in enumerate(source_layers):
        if not isinstance(source, Detect):
            continue
        head_keys |= {f"model.{i}.{k}" for k in source.state_dict()}
        for j, target in enumerate(target_layers):
            if isinstance(target, Detect):
                anchors = own[f"model.{j}.anchors"].clone()
                for a, b in _detect_levels(source, target):
                    for name in ("weight", "bias"):
                        put(f"model.{i}.m.{a}.{name}", f"model.{j}.m.{b}.{name}")
                    anchors[b] = source_state[f"model.{i}.anchors"][a]
                out.state[f"model.{j}.anchors"] = anchors
    # a head of another class count is re-initialised by design; everything else must find its place
    out.unplaced = sorted(k for k in source_state if k not in used and k not in head_keys
                          and not k.endswith("num_batches_tracked"))
    return out
