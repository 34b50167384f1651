"""Image augmentations for detection. Boxes are (n, 4) xyxy in pixels and move with the image.

Every function takes an explicit ``numpy.random.Generator`` so that a seed reproduces a batch exactly.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


def longest_side_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``size``, keeping the aspect ratio (sides rounded up)."""
    gain = size / max(h, w)
    return (h, w) if gain == 1 else (math.ceil(h * gain), math.ceil(w * gain))


@dataclass(frozen=True)
class Preprocessing:
    """How evaluation images are shrunk and where their boxes map back: the convention a model family is
    scored with. YOLOv5's: area interpolation, boxes mapped back with the exact half padding and one gain;
    ultralytics' (YOLOv8 / YOLO11): linear interpolation, the integer pad offsets and a gain per axis."""

    shrink_interpolation: int = cv2.INTER_AREA
    integer_pad: bool = False


YOLOV5_PREPROCESSING = Preprocessing()
ULTRALYTICS_PREPROCESSING = Preprocessing(cv2.INTER_LINEAR, integer_pad=True)


def box_mapping(image_hw: tuple[int, int], gain: float, pad: tuple[float, float],
                preprocessing: Preprocessing) -> tuple[float | tuple[float, float], tuple[float, float]]:
    """How detections on a :func:`letterbox` result map back to an image of ``image_hw``: (gain, pad) as letterbox
    gave them (YOLOv5), or with ``integer_pad`` the offsets where the image really sits and each axis's gain from
    the rounded resized size (ultralytics' prediction)."""
    if not preprocessing.integer_pad:
        return gain, pad
    h, w = image_hw
    new_w, new_h = max(1, int(round(w * gain))), max(1, int(round(h * gain)))
    return (new_w / w, new_h / h), (int(round(pad[0] - 0.1)), int(round(pad[1] - 0.1)))


def resize_longest_side(image: np.ndarray, size: int, augment: bool = False,
                        shrink_interpolation: int = cv2.INTER_AREA) -> tuple[np.ndarray, float]:
    """Resize so the longest side is ``size``, keeping the aspect ratio (sides rounded up).

    ``shrink_interpolation`` (area by default) when shrinking without augmentation, else linear.
    Returns the image and the gain.
    """
    h, w = image.shape[:2]
    gain = size / max(h, w)
    if gain == 1:
        return image, 1.0
    interpolation = cv2.INTER_LINEAR if (augment or gain > 1) else shrink_interpolation
    new_h, new_w = longest_side_shape(h, w, size)
    return cv2.resize(image, (new_w, new_h), interpolation=interpolation), gain


def letterbox(image: np.ndarray, shape: tuple[int, int], scale_up: bool = True, stride: int = 32,
              minimal: bool = False) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Fit an image into ``shape`` (h, w) keeping its aspect ratio and pad with grey.

    With ``minimal`` the padding only reaches the next multiple of ``stride`` (detection); otherwise the
    result is exactly ``shape`` (rectangular validation batches). Returns image, gain, (pad_x, pad_y).

    The pad returned is the exact half padding (dw / 2, dh / 2) while the image sits at the rounded
    offset, half a pixel apart when the padding is odd. Boxes are mapped with the half padding, as the
    reference implementation does (its weights were trained that way): on coco128 val at 640 this gives
    AP_S 0.186, the integer offset 0.182.
    """
    h, w = image.shape[:2]
    gain = min(shape[0] / h, shape[1] / w)
    if not scale_up:
        gain = min(gain, 1.0)
    new_w, new_h = max(1, int(round(w * gain))), max(1, int(round(h * gain)))  # a 1x3000 strip keeps 1 row
    dw, dh = shape[1] - new_w, shape[0] - new_h
    if minimal:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                               value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return image, gain, (dw, dh)


def augment_hsv(image: np.ndarray, rng: np.random.Generator, hgain: float = 0.5, sgain: float = 0.5,
                vgain: float = 0.5) -> None:
    """Random hue, saturation and value gains on an RGB uint8 image, in place, via lookup tables (the same
    gains give the same result as YOLOv5's on the BGR copy of the image)."""
    if not (hgain or sgain or vgain):
        return
    gains = rng.uniform(-1, 1, 3) * (hgain, sgain, vgain) + 1
    x = np.arange(256, dtype=np.float32)
    tables = ((x * gains[0]) % 180, np.clip(x * gains[1], 0, 255), np.clip(x * gains[2], 0, 255))
    # one single-channel table per plane: OpenCV's 3-channel LUT has no vectorised path (1.0 vs 0.35 ms at 640)
    planes = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    hsv = cv2.merge([cv2.LUT(plane, table.astype(np.uint8)) for plane, table in zip(planes, tables)])
    cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=image)


def random_affine_matrix(rng: np.random.Generator, in_shape: tuple[int, int], out_shape: tuple[int, int],
                         degrees: float = 0.0, translate: float = 0.1, scale: float = 0.5, shear: float = 0.0,
                         perspective: float = 0.0) -> tuple[np.ndarray, float]:
    """A random 3x3 map from an ``in_shape`` (h, w) image to an ``out_shape`` one: perspective, rotation and
    scale, shear and translation about the input's centre (YOLOv5's draws, in its order). Returns the matrix and
    the scale factor drawn."""
    centre = np.eye(3)
    centre[0, 2], centre[1, 2] = -in_shape[1] / 2, -in_shape[0] / 2
    persp = np.eye(3)
    persp[2, 0], persp[2, 1] = rng.uniform(-perspective, perspective, 2)
    rotate = np.eye(3)
    angle, factor = rng.uniform(-degrees, degrees), rng.uniform(1 - scale, 1 + scale)
    rotate[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=factor)
    shear_m = np.eye(3)
    shear_m[0, 1], shear_m[1, 0] = np.tan(np.radians(rng.uniform(-shear, shear, 2)))
    move = np.eye(3)
    move[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_shape[1]
    move[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_shape[0]
    return move @ shear_m @ rotate @ persp @ centre, factor


@dataclass(frozen=True)
class BoxRule:
    """When a box survives an augmentation (hyp keys ``min_box_side``, ``min_box_area``): still at least
    ``min_side`` network-input pixels wide and high, keeping ``min_area`` of its (scaled) area, not needle-thin."""

    min_side: float = 2.0
    min_area: float = 0.1
    max_aspect: float = 100.0


DROP_REASONS = ("outside the crop", "cut at the border", "too small", "needle-thin")


def drop_reasons(before: np.ndarray, after: np.ndarray, rule: BoxRule, eps: float = 1e-16) -> np.ndarray:
    """Counts of dropped boxes (4, n) per reason of DROP_REASONS, the first that applies."""
    w1, h1 = before[2] - before[0], before[3] - before[1]
    w2, h2 = after[2] - after[0], after[3] - after[1]
    outside = (w2 <= 0) | (h2 <= 0)
    cut = ~outside & (w2 * h2 / (w1 * h1 + eps) <= rule.min_area)
    small = ~outside & ~cut & ((w2 <= rule.min_side) | (h2 <= rule.min_side))
    thin = ~outside & ~cut & ~small
    return np.array([outside.sum(), cut.sum(), small.sum(), thin.sum()], dtype=np.int64)


def warp_with_boxes(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, matrix: np.ndarray, factor: float,
                    out_shape: tuple[int, int], rule: BoxRule = BoxRule(), tally: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp an image to ``out_shape`` (h, w) by ``matrix`` and its boxes with it: each box becomes its
    transformed corners' envelope, clipped; boxes that fail ``rule`` are dropped with their classes (and
    counted per reason into ``tally`` when given)."""
    out_h, out_w = out_shape
    projective = bool(matrix[2, 0] or matrix[2, 1])
    if image.shape[:2] != out_shape or (matrix != np.eye(3)).any():
        fill = (PAD_VALUE, PAD_VALUE, PAD_VALUE)
        if projective:
            image = cv2.warpPerspective(image, matrix, dsize=(out_w, out_h), borderValue=fill)
        else:
            image = cv2.warpAffine(image, matrix[:2], dsize=(out_w, out_h), borderValue=fill)

    if len(boxes):
        corners = np.ones((len(boxes) * 4, 3))
        corners[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(-1, 2)
        corners = corners @ matrix.T
        corners = corners[:, :2] / (corners[:, 2:3] if projective else 1)
        corners = corners.reshape(-1, 8)
        xs, ys = corners[:, [0, 2, 4, 6]], corners[:, [1, 3, 5, 7]]
        new = np.stack((xs.min(1), ys.min(1), xs.max(1), ys.max(1)), 1)
        new[:, [0, 2]] = new[:, [0, 2]].clip(0, out_w)
        new[:, [1, 3]] = new[:, [1, 3]].clip(0, out_h)
        keep = box_survives(boxes.T * factor, new.T, rule.min_side, rule.min_area, rule.max_aspect)
        if tally is not None and not keep.all():
            tally += drop_reasons((boxes[~keep] * factor).T, new[~keep].T, rule)
        boxes, classes = new[keep], classes[keep]
    return image, boxes, classes


@dataclass(frozen=True)
class AffineRange:
    """The ranges random_perspective draws from (the hyp file's keys): rotation in degrees, translation as a
    fraction of the output, scale gain, shear in degrees, perspective."""

    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0


def random_perspective(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
                       affine: AffineRange = AffineRange(), border: tuple[int, int] = (0, 0),
                       rule: BoxRule = BoxRule(),
                       tally: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rotation, scale, shear, translation and perspective of an image and its boxes.

    ``border`` (negative) crops a mosaic canvas back to the output size. Boxes are the transformed
    corners' envelope, clipped; boxes that become degenerate are dropped with their classes.
    """
    out_shape = (image.shape[0] + border[0] * 2, image.shape[1] + border[1] * 2)
    matrix, factor = random_affine_matrix(rng, image.shape[:2], out_shape, affine.degrees, affine.translate,
                                          affine.scale, affine.shear, affine.perspective)
    return warp_with_boxes(image, boxes, classes, matrix, factor, out_shape, rule, tally)


def box_survives(before: np.ndarray, after: np.ndarray, min_side: float = 2, min_area_ratio: float = 0.1,
                 max_aspect: float = 100, eps: float = 1e-16) -> np.ndarray:
    """Keep boxes (4, n) that are still more than ``min_side`` px wide and high, keep more than
    ``min_area_ratio`` of their (scaled) area and are not needle-thin."""
    w1, h1 = before[2] - before[0], before[3] - before[1]
    w2, h2 = after[2] - after[0], after[3] - after[1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > min_side) & (h2 > min_side) & (w2 * h2 / (w1 * h1 + eps) > min_area_ratio) & (
        aspect < max_aspect)


def mixup(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, other: tuple, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend two same-size samples with a Beta(32, 32) weight; boxes of both are kept."""
    ratio = rng.beta(32.0, 32.0)
    image = (image * ratio + other[0] * (1 - ratio)).astype(np.uint8)
    return image, np.concatenate((boxes, other[1]), 0), np.concatenate((classes, other[2]), 0)


class AlbumentationsPipeline:
    """Small-probability photometric transforms through albumentations' bounding-box API.

    Which transforms fire is drawn here, from the caller's generator; albumentations runs only on the images
    that get at least one (about 6 % at the default probabilities), with those transforms at p = 1. Its
    bounding-box bookkeeping costs ~1.5 ms per image, so this keeps the loader fast without changing what
    the pipeline does.
    """

    def __init__(self, probability_scale: float = 1.0) -> None:
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # its import would otherwise ask PyPI for news
        import albumentations as A

        p = probability_scale
        self._A = A
        self.transforms = [
            (A.Blur(p=1.0), 0.01 * p),
            (A.MedianBlur(p=1.0), 0.01 * p),
            (A.ToGray(p=1.0), 0.01 * p),
            (A.CLAHE(p=1.0), 0.01 * p),
            (A.RandomBrightnessContrast(p=1.0), 0.01 * p),
            (A.ImageCompression(quality_range=(75, 100), p=1.0), 0.01 * p),
        ]

    def _compose(self, transforms: list, seed: int):
        A = self._A
        with warnings.catch_warnings():  # pixel-only transforms: albumentations notes no box is moved
            warnings.simplefilter("ignore", UserWarning)
            return A.Compose(transforms, bbox_params=A.BboxParams(format="pascal_voc", label_fields=["class_labels"],
                                                                  min_visibility=0.0), seed=seed)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        draws = rng.random(len(self.transforms))
        chosen = [t for (t, probability), u in zip(self.transforms, draws) if u < probability]
        if not chosen:
            return image, boxes, classes
        out = self._compose(chosen, int(rng.integers(0, 2**31 - 1)))(image=image, bboxes=boxes, class_labels=classes)
        new_boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        return out["image"], new_boxes, np.asarray(out["class_labels"], dtype=classes.dtype).reshape(-1)
