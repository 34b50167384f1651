"""The YOLO dataset: letterboxed or rectangular batches for validation, mosaic and augmentation for training."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from utils.boxes import xywh_to_xyxy, xyxy_to_xywh
from utils.data.augmentations import (
    DROP_REASONS,
    YOLOV5_PREPROCESSING,
    AffineRange,
    AlbumentationsPipeline,
    BoxRule,
    Preprocessing,
    augment_hsv,
    letterbox,
    longest_side_shape,
    mixup,
    random_perspective,
    resize_longest_side,
)
from utils.data.formats import DatasetError
from utils.data.image_cache import ImageCache, cache_settings
from utils.data.images import jpeg_reduction, read_rgb
from utils.data.mosaic import Mosaic
from utils.data.scan import ScanResult

MAX_WORKERS = 64  # rows of the shared drop counters

# ----------------------------------------------------------------------------------------- dataset
def rect_batch_shapes(shapes_hw: np.ndarray, batch_size: int, imgsz: int, stride: int = 32,
                      pad: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Order images by aspect ratio and give each batch the smallest stride-multiple shape that holds it.

    Returns (order, per-image (h, w) network input shape in that order). A batch that mixes orientations
    gets a square.
    """
    aspect = shapes_hw[:, 0] / shapes_hw[:, 1]  # h / w
    order = np.argsort(aspect, kind="stable")
    aspect = aspect[order]
    n = len(order)
    n_batches = math.ceil(n / batch_size)
    batch_shapes = np.ones((n_batches, 2))
    for b in range(n_batches):
        chunk = aspect[b * batch_size:(b + 1) * batch_size]
        lo, hi = chunk.min(), chunk.max()
        if hi < 1:
            batch_shapes[b] = [hi, 1]
        elif lo > 1:
            batch_shapes[b] = [1, 1 / lo]
    batch_shapes = (np.ceil(batch_shapes * imgsz / stride + pad).astype(int) * stride)
    per_image = batch_shapes[np.arange(n) // batch_size]
    return order, per_image


@dataclass
class Hyp:
    """Augmentation hyper-parameters (a subset of the hyp YAML)."""

    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    flipud: float = 0.0
    fliplr: float = 0.5
    mosaic: float = 1.0
    mixup: float = 0.0
    albumentations: float = 1.0
    min_box_side: float = 2.0  # a box must stay wider and higher than this (network-input pixels) ...
    min_box_area: float = 0.1  # ... and keep more than this share of its area through an augmentation
    close_mosaic: float = 0.0  # no mosaic (nor mixup) in this many last epochs (ultralytics' close_mosaic)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Hyp:
        """The augmentation hyper-parameters of a hyp dict (missing keys take the defaults)."""
        d = d or {}
        return cls(**{k: float(d[k]) for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class LoadingOptions:
    """How a :class:`YoloDataset` serves its images beyond size and batch: rectangular batches at multiples of
    ``stride`` (validation), the seed of the augmentation draws, an image cache ('ram' or 'disk'), every box as
    class 0, libjpeg's reduced decoding, and the model family's preprocessing convention."""

    rect: bool = False
    stride: int = 32
    seed: int = 0
    cache_images: str | None = None
    single_cls: bool = False
    reduced_decoding: bool = False
    preprocessing: Preprocessing = YOLOV5_PREPROCESSING


class YoloDataset(Dataset):
    """YOLO images and labels.

    Training (``augment``): mosaic, random perspective, mixup, albumentations, HSV and flips.
    Validation: longest side to ``imgsz``, letterboxed into its rectangular batch shape (``rect``) or a
    square. Items are (image (3, H, W) uint8 RGB, labels (n, 6) = 0, cls, cx, cy, w, h normalised to the
    network input, path, (original (h, w), gain, (pad_x, pad_y))).
    ``cache_images`` 'ram' or 'disk' keeps decoded, resized images (:mod:`utils.data.image_cache`);
    ``reduced_decoding`` decodes JPEGs at least twice ``imgsz`` at 1/2, 1/4 or 1/8 scale (the pixels differ
    from a full decode and resize only by the resampling; the boxes are the same).
    """

    def __init__(self, scan: ScanResult, imgsz: int = 640, batch_size: int = 16, augment: bool = False,
                 hyp: Hyp | dict | None = None, loading: LoadingOptions | None = None, **keywords: Any) -> None:
        """``loading`` (or its fields as keywords): rect, stride, seed, cache_images, single_cls,
        reduced_decoding, preprocessing."""
        if not scan.images:
            raise DatasetError(f"{scan.source or 'dataset'}: no usable image ({len(scan.problems)} skipped)")
        loading = loading or LoadingOptions(**keywords)
        rect, stride, single_cls = loading.rect, loading.stride, loading.single_cls
        self.imgsz, self.augment, self.stride, self.seed = imgsz, augment, stride, loading.seed
        self.reduced_decoding = loading.reduced_decoding
        self.preprocessing = loading.preprocessing
        self.total_epochs: int | None = None  # the run's length, for close_mosaic (set by the training task)
        self.hyp = hyp if isinstance(hyp, Hyp) else Hyp.from_dict(hyp)
        self.box_rule = BoxRule(self.hyp.min_box_side, self.hyp.min_box_area)
        # boxes the augmentation dropped, per reason; a row per loader worker (0: the main process), in shared
        # memory so that the training process can report them
        self.drops = torch.zeros((MAX_WORKERS + 1, len(DROP_REASONS)), dtype=torch.int64).share_memory_()
        self.files = list(scan.images)  # names of the items (a tile's is "<file>#<x0>,<y0>")
        self.sources = list(scan.sources) if scan.sources is not None else list(self.files)  # what is decoded
        self.windows = list(scan.windows) if scan.windows is not None else [None] * len(self.files)
        self.shapes = np.array(scan.shapes, dtype=np.int64).reshape(-1, 2)
        self.labels = [x.copy() for x in scan.labels]
        # regions that are neither object nor background (VisDrone's ignored regions): painted grey on load
        self.ignore = list(scan.ignore) if len(scan.ignore) == len(self.files) else [None] * len(self.files)
        if single_cls:
            for x in self.labels:
                x[:, 0] = 0
        self.rect = rect
        self.mosaic = augment and not rect and self.hyp.mosaic > 0
        self.mosaic_loader = Mosaic(self)
        self.batch_input_shapes = None
        if rect:
            order, self.batch_input_shapes = rect_batch_shapes(self.shapes, batch_size, imgsz, stride,
                                                               pad=0.0 if augment else 0.5)
            self.files = [self.files[i] for i in order]
            self.sources = [self.sources[i] for i in order]
            self.windows = [self.windows[i] for i in order]
            self.shapes = self.shapes[order]
            self.labels = [self.labels[i] for i in order]
            self.ignore = [self.ignore[i] for i in order]
        self.albumentations = AlbumentationsPipeline(self.hyp.albumentations) if augment else None
        self.epoch = 0
        masked = " masked" if any(r is not None and len(r) for r in self.ignore) else ""
        self.image_cache = ImageCache(loading.cache_images, self.sources, self._decode_resized,
                                      cache_settings(imgsz, augment, loading.reduced_decoding) + masked,
                                      extras=[w and ",".join(map(str, w)) or "" for w in self.windows])
        self.image_cache.fill()

    def __len__(self) -> int:
        return len(self.files)

    def drop_tally(self) -> np.ndarray | None:
        """This process's row of :attr:`drops` (a view: adding to it counts)."""
        info = torch.utils.data.get_worker_info()
        row = 0 if info is None else 1 + info.id % MAX_WORKERS
        return self.drops[row].numpy()

    def dropped_boxes(self) -> dict[str, int]:
        """Boxes the augmentation has dropped so far, per reason (all workers)."""
        return dict(zip(DROP_REASONS, self.drops.sum(0).tolist()))

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next items belong to (seeds the augmentation; closes mosaic)."""
        self.epoch = epoch

    def _rng(self, index: int, epoch: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, epoch, index))

    def resized_shape(self, index: int) -> tuple[int, int]:
        """(h, w) that ``read_resized`` gives, from the scanned size without decoding (a reduced decode may make
        it 1 px smaller)."""
        h, w = (int(v) for v in self.shapes[index])
        return longest_side_shape(h, w, self.imgsz)

    def read_resized(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """RGB image with its longest side at ``imgsz`` (from the --cache when there is one)."""
        return self.image_cache.get(index), tuple(self.shapes[index])

    def _decode_resized(self, index: int) -> np.ndarray:
        path, shape, window = self.sources[index], tuple(self.shapes[index]), self.windows[index]
        reduce = self.reduced_decoding and window is None  # a tile is cut from the full-size decode
        image = read_rgb(path, jpeg_reduction(path, shape, self.imgsz) if reduce else 1)
        if image is None:
            raise DatasetError(f"{path}: could not be read (changed since the scan?)")
        if window is not None:
            x0, y0, x1, y1 = window
            image = np.ascontiguousarray(image[y0:y1, x0:x1])
        image = resize_longest_side(image, self.imgsz, augment=self.augment,
                                    shrink_interpolation=self.preprocessing.shrink_interpolation)[0]
        expected = self.resized_shape(index)
        if abs(image.shape[0] - expected[0]) > 1 or abs(image.shape[1] - expected[1]) > 1:
            # labels, rectangular batches and the mosaic's placement all rest on the scanned size
            raise DatasetError(f"{path}: now {image.shape[1]}x{image.shape[0]} at --imgsz {self.imgsz}, scanned as "
                               f"{shape[1]}x{shape[0]} (changed since the scan?)")
        regions = self.ignore[index]
        if regions is not None and len(regions):
            h, w = image.shape[:2]
            if not image.flags.writeable:
                image = image.copy()
            for x1, y1, x2, y2 in regions:
                image[int(y1 * h):math.ceil(y2 * h), int(x1 * w):math.ceil(x2 * w)] = 114
        return image

    def pixel_boxes(self, index: int, w: int, h: int, pad_x: float = 0, pad_y: float = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index``'s boxes in pixels of its resized image, with classes."""
        labels = self.labels[index]
        boxes = xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * (w, h, w, h) + (pad_x, pad_y, pad_x, pad_y)
        return boxes, labels[:, 0].copy()

    def _load_letterboxed(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
        image, (h0, w0) = self.read_resized(index)
        h, w = image.shape[:2]
        shape = (tuple(int(v) for v in self.batch_input_shapes[index]) if self.rect
                 else (self.imgsz, self.imgsz))
        image, gain, pad = letterbox(image, shape, scale_up=self.augment)
        boxes, classes = self.pixel_boxes(index, int(round(w * gain)), int(round(h * gain)), *pad)
        if self.preprocessing.integer_pad:  # where the image really sits; per axis, the resize times letterbox's gain
            offsets = (int(round(pad[0] - 0.1)), int(round(pad[1] - 0.1)))
            return image, boxes, classes, ((h0, w0), (w * gain / w0, h * gain / h0), offsets)
        # one gain for both axes, from the heights (as the reference maps boxes back; sides were rounded up)
        total_gain = h * gain / h0
        return image, boxes, classes, ((h0, w0), total_gain, pad)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str, tuple]:
        """``item`` is an index, or (epoch, index) from ``EpochBatchSampler``."""
        epoch, index = item if isinstance(item, tuple) else (self.epoch, item)
        rng = self._rng(index, epoch)
        hyp = self.hyp
        if self.mosaic and rng.random() < hyp.mosaic and not self._mosaic_closed(epoch):
            image, boxes, classes = self.mosaic_loader.load(index, rng)
            meta = None
            if rng.random() < hyp.mixup:
                other = self.mosaic_loader.load(int(rng.integers(0, len(self))), rng)
                image, boxes, classes = mixup(image, boxes, classes, other, rng)
        else:
            image, boxes, classes, meta = self._load_letterboxed(index)
            if self.augment:
                affine = AffineRange(hyp.degrees, hyp.translate, hyp.scale, hyp.shear, hyp.perspective)
                image, boxes, classes = random_perspective(image, boxes, classes, rng, affine, rule=self.box_rule,
                                                           tally=self.drop_tally())
        h, w = image.shape[:2]
        if meta is None:
            meta = ((h, w), 1.0, (0.0, 0.0))
        if self.augment:
            image, boxes, classes = self.albumentations(image, boxes.astype(np.float32), classes, rng)
            augment_hsv(image, rng, hyp.hsv_h, hyp.hsv_s, hyp.hsv_v)
            # cv2.flip writes a contiguous image; a numpy flip's negative strides cost a slow copy later
            if rng.random() < hyp.flipud:
                image = cv2.flip(image, 0)
                boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
            if rng.random() < hyp.fliplr:
                image = cv2.flip(image, 1)
                boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        labels = torch.zeros((len(boxes), 6))
        if len(boxes):
            xywh = xyxy_to_xywh(np.asarray(boxes, dtype=np.float64)) / (w, h, w, h)
            labels[:, 1] = torch.from_numpy(np.asarray(classes, dtype=np.float32))
            labels[:, 2:] = torch.from_numpy(xywh.astype(np.float32))
        # (3, H, W) over the HWC pixels: channels-last, the layout the models run in, so no transposing copy
        chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return chw, labels, self.files[index], meta

    def _mosaic_closed(self, epoch: int) -> bool:
        """Whether ``epoch`` is one of the last ``close_mosaic`` epochs of a run of ``total_epochs``."""
        return bool(self.hyp.close_mosaic) and self.total_epochs is not None \
            and epoch >= self.total_epochs - self.hyp.close_mosaic

    @staticmethod
    def collate(batch: list) -> tuple[torch.Tensor, torch.Tensor, list[str], list]:
        """Items -> one channels-last batch, labels with their image index, paths, metas."""
        images, labels, paths, metas = zip(*batch)
        for i, lb in enumerate(labels):
            lb[:, 0] = i
        return stack_channels_last(images), torch.cat(labels, 0), list(paths), list(metas)


def stack_channels_last(images: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(B, C, H, W) channels-last batch of same-size (C, H, W) images whose memory is (H, W, C). The stacking
    is a plain copy of each image's pixels, and inside a loader worker ``default_collate`` puts the batch in
    shared memory, so handing it to the main process copies nothing."""
    return torch.utils.data.default_collate([image.permute(1, 2, 0) for image in images]).permute(0, 3, 1, 2)
