"""Training (and optionally validating) on native-resolution windows of large images instead of shrinking them.

``tile_scan(scan, 640, overlap=0.2)`` turns every image of a scan into overlapping tile x tile windows (the
last one flush with the edge; an image smaller than a tile is one window). A box cut by a window border is
clipped and kept by the augmentation's survival rule (hyp keys ``min_box_side`` / ``min_box_area``, measured
at the network input), so a tiny object is either whole or gone, never a 1-px sliver. Windows without any box
are kept at the stated ``empty_rate`` (deterministic for a seed): background the model must learn, without
flooding the batches. Nothing is written anywhere: a tile is a window the loader cuts after decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.boxes import xywh_to_xyxy, xyxy_to_xywh
from utils.data.augmentations import BoxRule, box_survives
from utils.options import ConfigurationError

MAX_OVERLAP = 0.9  # at most 10 windows per tile length along each side; beyond it no user means the count


def check_tiling(tile: object, overlap: object, what: str = "tile") -> None:
    """A window side (a whole number >= 1) and an overlap in [0, MAX_OVERLAP]; else one line naming both."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"{what} size must be a whole number of pixels >= 1, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap <= MAX_OVERLAP:
        raise ValueError(f"{what} overlap must be in [0, {MAX_OVERLAP:g}] (0.9 already makes 100 windows per "
                         f"window area), got {overlap!r}")


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of overlapping tiles covering ``length``; the last tile ends at the edge."""
    check_tiling(tile, overlap)
    if tile >= length:
        return [0]
    step = max(int(tile * (1 - overlap)), 1)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


@dataclass
class TileSummary:
    """What tiling a split produced: images, tiles, tiles with boxes, empty tiles kept of all empty ones."""
    images: int
    tiles: int
    with_boxes: int
    empty_kept: int
    empty_total: int
    boxes_before: int
    boxes_after: int
    dropped_at_borders: int

    def line(self, split: str, tile: int, overlap: float, empty_rate: float) -> str:
        """The one log line of a tiled split."""
        return (f"{split} tiles: {self.images} images -> {self.tiles} windows of {tile} px (overlap {overlap:g}): "
                f"{self.with_boxes} with boxes, {self.empty_kept} of {self.empty_total} empty ones kept "
                f"(--tile-empty {empty_rate:g}); {self.boxes_before} boxes -> {self.boxes_after} in windows, "
                f"{self.dropped_at_borders} slivers at window borders dropped by the survival rule")


def _window_labels(labels: np.ndarray, hw: tuple[int, int], window: tuple[int, int, int, int], rule: BoxRule,
                   scale: float) -> tuple[np.ndarray, int]:
    """Labels of one window (normalised to it) and how many overlapping boxes the survival rule dropped."""
    h, w = hw
    x0, y0, x1, y1 = window
    if not len(labels):
        return labels.reshape(0, 5), 0
    boxes = xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * (w, h, w, h)
    inside = (boxes[:, 2] > x0) & (boxes[:, 0] < x1) & (boxes[:, 3] > y0) & (boxes[:, 1] < y1)
    boxes, classes = boxes[inside] - (x0, y0, x0, y0), labels[inside, 0]
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, x1 - x0)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, y1 - y0)
    keep = box_survives(boxes.T * scale, clipped.T * scale, rule.min_side, rule.min_area, rule.max_aspect)
    tw, th = x1 - x0, y1 - y0
    rows = np.concatenate([classes[keep, None], xyxy_to_xywh(clipped[keep]) / (tw, th, tw, th)], 1)
    return rows.astype(np.float32).reshape(-1, 5), int((~keep).sum())


def _window_regions(regions: np.ndarray, hw: tuple[int, int], window: tuple[int, int, int, int]) -> np.ndarray:
    """Ignored regions (normalised xyxy of the image) clipped to a window, normalised to it."""
    h, w = hw
    x0, y0, x1, y1 = window
    if not len(regions):
        return np.zeros((0, 4), np.float32)
    px = regions * (w, h, w, h) - (x0, y0, x0, y0)
    px[:, [0, 2]] = px[:, [0, 2]].clip(0, x1 - x0)
    px[:, [1, 3]] = px[:, [1, 3]].clip(0, y1 - y0)
    px = px[(px[:, 2] > px[:, 0]) & (px[:, 3] > px[:, 1])]
    return (px / (x1 - x0, y1 - y0, x1 - x0, y1 - y0)).astype(np.float32).reshape(-1, 4)


def tile_scan(scan, tile: int, overlap: float = 0.2, empty_rate: float = 0.1, rule: BoxRule = BoxRule(),
              imgsz: int | None = None, seed: int = 0):
    """A scan of windows: ``images`` are display names ``<file>#<x0>,<y0>``, ``sources`` the files,
    ``windows`` (x0, y0, x1, y1) in original pixels, ``shapes`` and ``labels`` those of the windows.
    Returns (tiled scan, :class:`TileSummary`)."""
    from utils.data.scan import ScanResult

    rng = np.random.default_rng(seed)
    out = ScanResult(problems=list(scan.problems), warnings=list(scan.warnings), source=scan.source)
    out.sources, out.windows = [], []
    counts = dict(with_boxes=0, empty_kept=0, empty_total=0, boxes_after=0, dropped_at_borders=0)
    ignores = scan.ignore if len(scan.ignore) == len(scan.images) else [np.zeros((0, 4), np.float32)] * len(scan.images)
    for path, (h, w), labels, ignore in zip(scan.images, scan.shapes, scan.labels, ignores):
        th, tw = min(tile, h), min(tile, w)
        scale = (imgsz or tile) / max(th, tw)
        for y0 in tile_origins(h, th, overlap):
            for x0 in tile_origins(w, tw, overlap):
                window = (x0, y0, x0 + tw, y0 + th)
                rows, dropped = _window_labels(labels, (h, w), window, rule, scale)
                counts["dropped_at_borders"] += dropped
                if not len(rows):
                    counts["empty_total"] += 1
                    if rng.random() >= empty_rate:
                        continue
                    counts["empty_kept"] += 1
                else:
                    counts["with_boxes"] += 1
                    counts["boxes_after"] += len(rows)
                out.images.append(f"{path}#{x0},{y0}")
                out.sources.append(path)
                out.windows.append(window)
                out.shapes.append((th, tw))
                out.labels.append(rows)
                out.ignore.append(_window_regions(ignore, (h, w), window))
    summary = TileSummary(len(scan.images), len(out.images), counts["with_boxes"], counts["empty_kept"],
                          counts["empty_total"], scan.n_boxes, counts["boxes_after"], counts["dropped_at_borders"])
    return out, summary


@dataclass(frozen=True)
class Slicing:
    """How images are cut for sliced prediction: ``tile_hw`` tiles (at least 32x32) overlapping by ``overlap``
    (0 to 0.9), merged by class-aware NMS or sahi's non-maximum merging (``nmm``)."""

    tile_hw: tuple[int, int]
    overlap: float = 0.2
    merge: str = "nms"

    def __post_init__(self) -> None:
        whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in self.tile_hw)
        if len(self.tile_hw) != 2 or not whole or min(self.tile_hw) < 32 or not 0 <= self.overlap <= MAX_OVERLAP:
            raise ConfigurationError(f"--slice needs tiles of at least 32x32 and --overlap in [0, {MAX_OVERLAP:g}], "
                                     f"got {list(self.tile_hw)} {self.overlap}")
        if self.merge not in ("nms", "nmm"):
            raise ConfigurationError(f"--merge {self.merge}: nms or nmm")
