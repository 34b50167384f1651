"""Mosaic: four training images on one 2x canvas around a random centre, then a random affine crop back to the
training size (YOLOv5's mosaic). It wraps a dataset that can read a resized image and its pixel boxes.

The random draws are YOLOv5's, all made before any image is read, so that an image landing wholly outside the
crop is not decoded (about one in ten at the default hyp); the output is the same as with every image read.

Tried and rejected: resizing each image's visible part straight into the output when the affine only scales
and shifts (no canvas; boxes mapped by the same resize, pixels within the resampling of the warp). It made the
loader 1.19x faster at 640, kept AP on a coco128 fine-tune (0.2925 / 0.2944 vs 0.2921 / 0.2939, two seeds), but
cost the main job (space_depth_n from scratch on the embedded set) 0.016 AP over six seeds (0.1596 vs 0.1759,
lower in five of six; paired t = -3.5). A likely reason, not a proven one: the warp's random sub-pixel phase
softens every mosaic a little (mean |Laplacian| 8.47 against 8.74 for the resize on that set), closer to the
area-filtered validation images.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from utils.data.augmentations import PAD_VALUE, random_affine_matrix, warp_with_boxes

VISIBILITY_MARGIN = 3  # canvas pixels: a predicted size may be 1 px off, and bilinear sampling reaches 1 px out


class MosaicSource(Protocol):
    """What the mosaic loader reads from its dataset."""

    imgsz: int
    hyp: object
    box_rule: object

    def drop_tally(self) -> np.ndarray | None:
        """The row of the dropped-box counts this worker adds to."""

    def __len__(self) -> int: ...

    def resized_shape(self, index: int) -> tuple[int, int]:
        """(h, w) of image ``index`` after resizing."""

    def read_resized(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Image ``index`` resized to the training size, and its original (h, w)."""

    def pixel_boxes(self, index: int, w: int, h: int, pad_x: float = 0, pad_y: float = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index``'s boxes in pixels of a ``w`` x ``h`` placement offset by the pads, and classes."""


class Mosaic:
    """``Mosaic(dataset).load(index, rng)`` -> (image, xyxy pixel boxes, classes) of the output size."""

    def __init__(self, source: MosaicSource) -> None:
        self.source = source

    def load(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A 4-image mosaic around image ``index``, randomly placed and cropped to the output size."""
        source, hyp = self.source, self.source.hyp
        s = source.imgsz
        xc, yc = (int(rng.uniform(s // 2, 2 * s - s // 2)) for _ in range(2))
        indices = [index, *rng.integers(0, len(source), 3).tolist()]
        matrix, factor = random_affine_matrix(rng, (2 * s, 2 * s), (s, s), hyp.degrees, hyp.translate, hyp.scale,
                                              hyp.shear, hyp.perspective)
        view = _view_on_canvas(matrix, s)
        canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, dtype=np.uint8)
        all_boxes, all_classes = [np.zeros((0, 4))], [np.zeros(0, dtype=np.float32)]
        for k, i in enumerate(indices):
            if view is not None:
                h, w = source.resized_shape(i)
                if not _overlaps(_placement(k, xc, yc, w, h, s)[0], view):
                    continue  # none of its pixels or boxes would reach the output
            image, _ = source.read_resized(i)
            h, w = image.shape[:2]
            (x1a, y1a, x2a, y2a), (x1b, y1b) = _placement(k, xc, yc, w, h, s)
            canvas[y1a:y2a, x1a:x2a] = image[y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
            boxes, classes = source.pixel_boxes(i, w, h, x1a - x1b, y1a - y1b)
            all_boxes.append(boxes)
            all_classes.append(classes)
        boxes = np.clip(np.concatenate(all_boxes, 0), 0, 2 * s)
        return warp_with_boxes(canvas, boxes, np.concatenate(all_classes, 0), matrix, factor, (s, s),
                               source.box_rule, source.drop_tally())


def _view_on_canvas(matrix: np.ndarray, s: int) -> tuple[float, float, float, float] | None:
    """The canvas box the s x s output is taken from (widened by the visibility margin), or None under a
    perspective or a singular map (no image is skipped then)."""
    if matrix[2, 0] or matrix[2, 1] or not np.linalg.det(matrix):  # a zero scale maps everything to a point
        return None
    inverse = np.linalg.inv(matrix)
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], dtype=np.float64) @ inverse.T
    m = VISIBILITY_MARGIN
    return corners[:, 0].min() - m, corners[:, 1].min() - m, corners[:, 0].max() + m, corners[:, 1].max() + m


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _placement(k: int, xc: int, yc: int, w: int, h: int, s: int) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Where image k (0 top left, 1 top right, 2 bottom left, 3 bottom right) lands on the canvas, and the
    corner of the image that lands there."""
    if k == 0:
        x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
        return (x1a, y1a, x2a, y2a), (w - (x2a - x1a), h - (y2a - y1a))
    if k == 1:
        x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
        return (x1a, y1a, x2a, y2a), (0, h - (y2a - y1a))
    if k == 2:
        x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
        return (x1a, y1a, x2a, y2a), (w - (x2a - x1a), 0)
    return (xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)), (0, 0)
