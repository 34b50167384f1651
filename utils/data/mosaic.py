"""Mosaic: four training images on one 2x canvas around a random centre, then a random affine crop back to the
training size (YOLOv5's mosaic). It wraps a dataset that can read a resized image and its pixel boxes."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from utils.augmentations import random_perspective


class MosaicSource(Protocol):
    imgsz: int
    hyp: object

    def __len__(self) -> int: ...

    def read_resized(self, index: int) -> tuple[np.ndarray, tuple[int, int]]: ...

    def pixel_boxes(self, index: int, w: int, h: int, pad_x: float = 0, pad_y: float = 0
                    ) -> tuple[np.ndarray, np.ndarray]: ...


class Mosaic:
    """``Mosaic(dataset).load(index, rng)`` -> (image, xyxy pixel boxes, classes) of the output size."""

    def __init__(self, source: MosaicSource) -> None:
        self.source = source

    def load(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        source = self.source
        s = source.imgsz
        xc, yc = (int(rng.uniform(s // 2, 2 * s - s // 2)) for _ in range(2))
        indices = [index, *rng.integers(0, len(source), 3).tolist()]
        canvas = np.full((2 * s, 2 * s, 3), 114, dtype=np.uint8)
        all_boxes, all_classes = [], []
        for k, i in enumerate(indices):
            image, _ = source.read_resized(i)
            h, w = image.shape[:2]
            (x1a, y1a, x2a, y2a), (x1b, y1b) = _placement(k, xc, yc, w, h, s)
            canvas[y1a:y2a, x1a:x2a] = image[y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
            boxes, classes = source.pixel_boxes(i, w, h, x1a - x1b, y1a - y1b)
            all_boxes.append(boxes)
            all_classes.append(classes)
        boxes = np.concatenate(all_boxes, 0)
        classes = np.concatenate(all_classes, 0)
        np.clip(boxes, 0, 2 * s, out=boxes)
        hyp = source.hyp
        return random_perspective(canvas, boxes, classes, rng, degrees=hyp.degrees, translate=hyp.translate,
                                  scale=hyp.scale, shear=hyp.shear, perspective=hyp.perspective,
                                  border=(-s // 2, -s // 2))


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
