"""Mosaic: four training images on one 2x canvas around a random centre, then a random affine crop back to the
training size (YOLOv5's mosaic). It wraps a dataset that can read a resized image and its pixel boxes.

The random draws are YOLOv5's, made before any image is read, so two kinds of work are skipped:

- an image that lands wholly outside the crop is not decoded (about one in ten at the default hyp);
- when the affine map only scales and shifts (no rotation, shear or perspective: the default hyp), the canvas
  is never built: each image's visible part is resized straight into the output, and its boxes are mapped by
  the very same resize. Pixels then differ from a canvas warp only by the resampling (OpenCV's resize against
  its warp, and each image shifted by at most half an output pixel to land on whole pixels); the boxes follow
  the pixels exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from utils.augmentations import (
    PAD_VALUE,
    box_survives,
    is_scale_and_shift,
    random_affine_matrix,
    warp_with_boxes,
)

VISIBILITY_MARGIN = 3  # canvas pixels: a predicted size may be 1 px off, and bilinear sampling reaches 1 px out


class MosaicSource(Protocol):
    imgsz: int
    hyp: object

    def __len__(self) -> int: ...

    def resized_shape(self, index: int) -> tuple[int, int]: ...

    def read_resized(self, index: int) -> tuple[np.ndarray, tuple[int, int]]: ...

    def pixel_boxes(self, index: int, w: int, h: int, pad_x: float = 0, pad_y: float = 0
                    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class _Piece:
    """One image's visible part on the canvas: canvas box (x1, y1, x2, y2), image corner (x, y) that lands
    at the canvas box's corner, and the image's boxes in image pixels."""

    image: np.ndarray
    canvas_box: tuple[int, int, int, int]
    image_corner: tuple[int, int]
    boxes: np.ndarray
    classes: np.ndarray

    def boxes_on_canvas(self) -> np.ndarray:
        x1a, y1a, x2a, y2a = self.canvas_box
        shift = (x1a - self.image_corner[0], y1a - self.image_corner[1]) * 2
        return _clip_boxes(self.boxes + shift, self.canvas_box)


class Mosaic:
    """``Mosaic(dataset).load(index, rng)`` -> (image, xyxy pixel boxes, classes) of the output size.

    ``direct`` False always builds the canvas and warps it (YOLOv5's pixels; images outside the crop are still
    not decoded, which changes nothing)."""

    def __init__(self, source: MosaicSource, direct: bool = True) -> None:
        self.source, self.direct = source, direct

    def load(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        source, hyp = self.source, self.source.hyp
        s = source.imgsz
        xc, yc = (int(rng.uniform(s // 2, 2 * s - s // 2)) for _ in range(2))
        indices = [index, *rng.integers(0, len(source), 3).tolist()]
        matrix, factor = random_affine_matrix(rng, (2 * s, 2 * s), (s, s), hyp.degrees, hyp.translate, hyp.scale,
                                              hyp.shear, hyp.perspective)
        view = _view_on_canvas(matrix, s)
        pieces = []
        for k, i in enumerate(indices):
            if view is not None:
                h, w = source.resized_shape(i)
                if not _overlaps(_placement(k, xc, yc, w, h, s)[0], view):
                    continue
            image, _ = source.read_resized(i)
            h, w = image.shape[:2]
            canvas_box, image_corner = _placement(k, xc, yc, w, h, s)
            boxes, classes = source.pixel_boxes(i, w, h)
            pieces.append(_Piece(image, canvas_box, image_corner, boxes, classes))
        if self.direct and is_scale_and_shift(matrix):
            return _resize_into_output(pieces, matrix, factor, s)
        canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, dtype=np.uint8)
        for p in pieces:
            (x1a, y1a, x2a, y2a), (x1b, y1b) = p.canvas_box, p.image_corner
            canvas[y1a:y2a, x1a:x2a] = p.image[y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
        boxes = np.concatenate([p.boxes_on_canvas() for p in pieces] or [np.zeros((0, 4))], 0)
        classes = np.concatenate([p.classes for p in pieces] or [np.zeros(0)], 0)
        return warp_with_boxes(canvas, boxes, classes, matrix, factor, (s, s))


def _resize_into_output(pieces: list[_Piece], matrix: np.ndarray, factor: float, s: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mosaic for a scale-and-shift ``matrix``: each piece's canvas box maps to an output rectangle
    (rounded to whole pixels, so neighbours still tile), filled by resizing the image region behind it."""
    scale, shift_x, shift_y = matrix[0, 0], matrix[0, 2], matrix[1, 2]
    out = np.full((s, s, 3), PAD_VALUE, dtype=np.uint8)
    all_boxes, all_classes = [np.zeros((0, 4))], [np.zeros(0)]
    for p in pieces:
        (x1a, y1a, x2a, y2a), (x1b, y1b) = p.canvas_box, p.image_corner
        u0, u1 = (min(max(round(scale * x + shift_x), 0), s) for x in (x1a, x2a))
        v0, v1 = (min(max(round(scale * y + shift_y), 0), s) for y in (y1a, y2a))
        # the image region behind [u0, u1) x [v0, v1), widened to whole pixels, within the visible part
        dx, dy = x1a - x1b, y1a - y1b
        a0 = max(math.floor((u0 - shift_x) / scale - dx), x1b)
        a1 = min(math.ceil((u1 - shift_x) / scale - dx), x1b + x2a - x1a)
        b0 = max(math.floor((v0 - shift_y) / scale - dy), y1b)
        b1 = min(math.ceil((v1 - shift_y) / scale - dy), y1b + y2a - y1a)
        if u1 <= u0 or v1 <= v0 or a1 <= a0 or b1 <= b0:
            continue  # nothing of it in the output; its boxes would all be dropped
        cv2.resize(p.image[b0:b1, a0:a1], (u1 - u0, v1 - v0), dst=out[v0:v1, u0:u1], interpolation=cv2.INTER_LINEAR)
        if len(p.boxes):
            visible = _clip_boxes(p.boxes, (x1b, y1b, x1b + x2a - x1a, y1b + y2a - y1a))
            gain = np.array([(u1 - u0) / (a1 - a0), (v1 - v0) / (b1 - b0)] * 2)
            moved = _clip_boxes((visible - (a0, b0, a0, b0)) * gain + (u0, v0, u0, v0), (u0, v0, u1, v1))
            keep = box_survives(visible.T * factor, moved.T)
            all_boxes.append(moved[keep])
            all_classes.append(p.classes[keep])
    return out, np.concatenate(all_boxes, 0), np.concatenate(all_classes, 0)


def _clip_boxes(boxes: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.clip(boxes, (x1, y1, x1, y1), (x2, y2, x2, y2))


def _view_on_canvas(matrix: np.ndarray, s: int) -> tuple[float, float, float, float] | None:
    """The canvas box the s x s output is taken from (widened by the visibility margin), or None under a
    perspective map (no image is skipped then)."""
    if matrix[2, 0] or matrix[2, 1]:
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
