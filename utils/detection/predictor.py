"""The Python inference API, behind detect.py and the hub.

    from utils.detection.predictor import Detector
    detector = Detector("weights/best.pt")                     # or a list of weights: an ensemble
    for det in detector(["bus.jpg", bgr_array, pil_image]):    # a list of Detections
        print(det.names_of(), det.scores, det.xyxy)            # boxes in original pixels
    for det in detector("clip.mp4", stream=True):             # one frame at a time, never the whole video
        cv2.imshow("x", det.plot())

Sources are anything :func:`utils.data.sources.iterate_source` reads: paths, folders, globs, videos, camera
indices, stream and image URLs, ``.streams`` files, numpy arrays, PIL images, tensors and lists of them. Numpy
arrays are **BGR** (OpenCV's order) unless ``numpy_order="rgb"`` (the hub's default, as yolov5's hub).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.boxes import check_max_det, class_aware_nms, merge_by_ios, non_max_suppression, unletterbox_boxes
from utils.data.augmentations import box_mapping, letterbox
from utils.data.sources import Frame, iterate_source
from utils.data.tiles import tile_origins
from utils.deploy.backends import load_any
from utils.detection.head_families import family_of
from utils.detection.results import Detections
from utils.distributed import select_device
from utils.image_size import check_image_size
from utils.logging import LOGGER
from utils.precision import half_inputs, inference_autocast, inference_half

MERGES = ("nms", "nmm")


def _memory_of(device: torch.device) -> str | None:
    return str(device) if device.type == "cuda" else None


class Detector:
    """Load weights once (one file, or several: an ensemble whose outputs are merged before NMS); detect on any
    source. ``imgsz`` is a size or (h, w), rounded up to the largest stride; ``augment`` is test-time
    augmentation (3 scales and a flip merged before NMS, PyTorch weights only)."""

    def __init__(self, weights: str | Path | list, device: str = "", imgsz: int | tuple[int, int] = 640,
                 conf_thres: float = 0.25, iou_thres: float | None = None, max_det: int | None = None,
                 classes: list[int] | None = None, agnostic: bool = False, half: bool = False,
                 merge_ios: float = 0.5, model: torch.nn.Module | None = None, augment: bool = False,
                 numpy_order: str = "bgr") -> None:
        """``model``: the inference model of ``weights`` already loaded on ``device`` (val.py --slice), so
        it is not read twice; ``half`` is then taken as already decided. ``iou_thres`` / ``max_det`` None: the
        model family's (YOLOv5 0.45 / 1000 as yolov5's detect.py, YOLOv8 / YOLO11 0.7 / 300 as ultralytics)."""
        self.device = select_device(device)
        self.weights = weights
        if model is None:
            self.model = load_any(weights, self.device).for_inference()
            self.half, line = inference_half(self.model, self.device, half)
            if line:
                LOGGER.info(line)
        else:
            self.model, self.half = model, half
        self.family = family_of(self.model)
        iou_thres = self.family.predict_iou if iou_thres is None else iou_thres
        max_det = self.family.predict_max_det if max_det is None else max_det
        self.names = list(self.model.names)
        self.stride = int(self.model.stride.max())
        fixed = getattr(self.model, "fixed_shape", None)
        self.fixed = fixed is not None
        if fixed is not None:
            self.imgsz = (int(fixed[0]), int(fixed[1]))
        else:
            size = check_image_size(imgsz, self.stride, device=_memory_of(self.device))
            self.imgsz = (size, size) if isinstance(size, int) else size
        self.conf_thres, self.iou_thres, self.max_det = conf_thres, iou_thres, check_max_det(max_det)
        self.classes, self.agnostic = self._checked_classes(classes), agnostic
        self.merge_ios = merge_ios  # the intersection-over-smaller of --merge nmm (sahi's default 0.5)
        self.augment = augment
        self.numpy_order = numpy_order

    def _checked_classes(self, classes: list[int] | None) -> list[int] | None:
        if classes is None:
            return None
        outside = [c for c in classes if not 0 <= int(c) < len(self.names)]
        if outside:
            shown = ", ".join(self.names[:3]) + (", ..." if len(self.names) > 3 else "")
            raise ValueError(f"--classes {' '.join(map(str, classes))}: {self.weights} has classes "
                             f"0..{len(self.names) - 1} ({shown}); {outside} not among them")
        return [int(c) for c in classes]

    @property
    def augment(self) -> bool:
        return self._augment

    @augment.setter
    def augment(self, value: bool) -> None:
        if value and not hasattr(self.model, "forward_augmented"):
            raise ValueError(f"{self.weights}: test-time augmentation (--augment) needs PyTorch weights (.pt), "
                             f"not an export")
        self._augment = bool(value)

    # ------------------------------------------------------------------------------------------------ core
    def _letterboxed(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list]:
        """A batch: minimal padding when every image gives the same shape (one image, a stream batch of one
        camera), else every image letterboxed to the full size."""
        boxed = [letterbox(im, self.imgsz, scale_up=True, stride=self.stride, minimal=not self.fixed)
                 for im in images]
        if len({b[0].shape for b in boxed}) > 1:
            boxed = [letterbox(im, self.imgsz, scale_up=True, stride=self.stride) for im in images]
        array = np.stack([b[0] for b in boxed])[..., ::-1].transpose(0, 3, 1, 2)  # BGR -> RGB, BHWC -> BCHW
        x = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        x = (x.half() if half_inputs(self.device, self.half) else x.float()).div_(255)
        return x, [(b[1], b[2]) for b in boxed]

    @torch.no_grad()
    def _run_batch(self, images: list[np.ndarray]) -> list[torch.Tensor]:
        """BGR images -> (n, 6) detections each, in its pixels (before any cross-tile merge)."""
        x, geometry = self._letterboxed(images)
        if getattr(self.model, "nms_inside", False):  # export.py --nms: final boxes (every class above conf)
            if self.agnostic:
                raise ValueError(f"{self.weights}: class-agnostic NMS needs the plain export (this one has NMS "
                                 f"inside)")
            dets = self.model.detect(x, self.conf_thres, self.iou_thres, self.max_det, self.classes)
        else:
            with inference_autocast(self.device, self.half):
                predictions = self.model.forward_augmented(x) if self._augment else self.model(x)
            dets = non_max_suppression(predictions.float(), self.conf_thres, self.iou_thres, multi_label=False,
                                       max_det=self.max_det, classes=self.classes, agnostic=self.agnostic)
        out = []
        for det, image, (gain, pad) in zip(dets, images, geometry):
            det = det.cpu()
            gain, pad = box_mapping(image.shape[:2], gain, pad, self.family.preprocessing)
            det[:, :4] = unletterbox_boxes(det[:, :4], gain, pad, image.shape[:2])
            out.append(det)
        return out

    def _run(self, image: np.ndarray) -> torch.Tensor:
        return self._run_batch([image])[0]

    def predict_tensors(self, image: np.ndarray, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
                        merge: str = "nms") -> tuple[torch.Tensor, torch.Tensor]:
        """(the full image's (n, 6) detections, the final ones: with tiles merged when ``slice_hw``)."""
        if merge not in MERGES:
            raise ValueError(f"--merge {merge}: nms or nmm")
        full = self._run(image)
        if not slice_hw:
            return full, full
        h, w = image.shape[:2]
        th, tw = min(slice_hw[0], h), min(slice_hw[1], w)
        parts = [full]
        for y in tile_origins(h, th, overlap):
            for x in tile_origins(w, tw, overlap):
                tile_det = self._run(np.ascontiguousarray(image[y:y + th, x:x + tw]))
                tile_det[:, [0, 2]] += x
                tile_det[:, [1, 3]] += y
                parts.append(tile_det)
        det = torch.cat(parts, 0)
        groups = torch.zeros_like(det[:, 5]) if self.agnostic else det[:, 5]
        if merge == "nmm":
            kept, boxes = merge_by_ios(det[:, :4], det[:, 4], groups, self.merge_ios)
            det = det[kept]
            det[:, :4] = boxes
            return full, det[:self.max_det]
        return full, det[class_aware_nms(det[:, :4], det[:, 4], groups, self.iou_thres)[:self.max_det]]

    def _detections(self, det: torch.Tensor, frame: Frame, keep_image: bool) -> Detections:
        return Detections(det[:, :4].numpy(), det[:, 4].numpy(), det[:, 5].numpy().astype(int), self.names,
                          frame.image.shape[:2], frame.source, frame.index, frame.image if keep_image else None)

    def predict_one(self, image: np.ndarray, source: str = "", slice_hw: tuple[int, int] | None = None,
                    overlap: float = 0.2, merge: str = "nms") -> Detections:
        """Detect on one BGR image; with ``slice_hw`` also on overlapping H x W tiles, merged with the full
        image's detections by class-aware NMS (``merge="nms"``) or by non-maximum merging with
        intersection-over-smaller matching (``merge="nmm"``, :func:`utils.boxes.merge_by_ios`)."""
        det = self.predict_tensors(image, slice_hw, overlap, merge)[1]
        return self._detections(det, Frame(image, source, "image"), keep_image=True)

    # ------------------------------------------------------------------------------------------------ sources
    def stream(self, source: Any, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
               merge: str = "nms", vid_stride: int = 1, on_skip=None, timeout: float = 10.0,
               batches: bool = False) -> Iterator[Detections] | Iterator[list[Detections]]:
        """Detections frame by frame (each holding its image), read lazily from ``source``; with ``batches``
        one list per batch of the source (a ``.streams`` file: one frame of every stream)."""
        for frames in iterate_source(source, self.numpy_order, vid_stride, timeout, on_skip):
            if slice_hw or len(frames) == 1:
                dets = [self.predict_tensors(f.image, slice_hw, overlap, merge)[1] for f in frames]
            else:
                dets = self._run_batch([f.image for f in frames])
            results = [self._detections(d, f, keep_image=True) for d, f in zip(dets, frames)]
            if batches:
                yield results
            else:
                yield from results

    def predict(self, source: Any, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
                merge: str = "nms", stream: bool = False, vid_stride: int = 1,
                timeout: float = 10.0) -> list[Detections] | Iterator[Detections]:
        """One Detections per image or frame. A list (video and stream frames in it without their images, so a
        long video does not fill the memory), or with ``stream=True`` a generator of complete ones."""
        frames = self.stream(source, slice_hw, overlap, merge, vid_stride, timeout=timeout)
        if stream:
            return frames
        out = []
        for det in frames:
            if det.frame is not None:
                det.image = None
            out.append(det)
        return out

    def __call__(self, source: Any, **kwargs) -> list[Detections] | Iterator[Detections]:
        """``detector(source)`` is :meth:`predict`."""
        return self.predict(source, **kwargs)
