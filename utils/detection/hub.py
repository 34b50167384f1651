"""The torch.hub model, behaving as yolov5's does:

    model = torch.hub.load("path/to/yolov5-spd", "custom", path="best.pt", source="local")
    model.conf, model.iou, model.classes, model.max_det, model.agnostic = 0.5, 0.45, [0, 2], 100, False
    results = model(["bus.jpg", rgb_array, pil_image], size=640, augment=False)
    results.print(); results.save(); results.crop(); df = results.pandas().xyxy[0]
    results.xyxy[0]     # (n, 6) tensor: x1 y1 x2 y2 conf class, as yolov5's hub

Numpy arrays given to the hub are **RGB**, as yolov5's hub expects (``model.numpy_order = "bgr"`` for
OpenCV frames); files, URLs and PIL images carry their own order. Setting an attribute the hub does not
use is an AttributeError, never a silent no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.boxes import check_max_det
from utils.detection.prediction import Detector
from utils.detection.results import TABLE_COLUMNS, Detections
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path

_SETTABLE = {"conf": "conf_thres", "iou": "iou_thres", "max_det": "max_det", "agnostic": "agnostic",
             "classes": "classes", "numpy_order": "numpy_order"}


class HubResults:
    """The detections of one hub call, with yolov5's accessors (``xyxy``, ``xywhn``, ``pandas()`` ...)."""

    def __init__(self, detections: list[Detections], names: list[str]) -> None:
        self.detections = detections
        self.names = names

    def __len__(self) -> int:
        return len(self.detections)

    def __getitem__(self, index: int) -> Detections:
        return self.detections[index]

    def __iter__(self):
        return iter(self.detections)

    def _tensors(self, attribute: str) -> list[torch.Tensor]:
        return [torch.cat([torch.as_tensor(getattr(d, attribute), dtype=torch.float32).reshape(-1, 4),
                           torch.as_tensor(d.scores, dtype=torch.float32)[:, None],
                           torch.as_tensor(d.classes, dtype=torch.float32)[:, None]], 1) for d in self.detections]

    xyxy = property(lambda self: self._tensors("xyxy"))
    xywh = property(lambda self: self._tensors("xywh"))
    xyxyn = property(lambda self: self._tensors("xyxyn"))
    xywhn = property(lambda self: self._tensors("xywhn"))

    def __str__(self) -> str:
        return "\n".join(f"image {i + 1}/{len(self)}: {d.image_shape[0]}x{d.image_shape[1]} {d.summary()}"
                         for i, d in enumerate(self.detections))

    def print(self) -> None:
        """Print each image's summary line, as yolov5's hub does."""
        LOGGER.info(str(self))

    def render(self) -> list[np.ndarray]:
        """The annotated images (BGR, as OpenCV writes them)."""
        return [d.plot() for d in self.detections]

    def save(self, save_dir: str | Path = "runs/detect/exp", exist_ok: bool = False) -> Path:
        """Write the annotated images into a new folder ``save_dir`` (numbered exp2, exp3 ... when it exists)."""
        folder = increment_path(Path(save_dir), exist_ok=exist_ok)
        for i, d in enumerate(self.detections):
            d.save(folder / (d.file if Path(d.file).suffix else f"image{i}.jpg"))
        LOGGER.info(f"saved {len(self)} images to {folder}")
        return folder

    def crop(self, save_dir: str | Path = "runs/detect/exp", exist_ok: bool = False) -> list[Path]:
        """Write one crop per box into ``<save_dir>/crops/<class>/``; returns the paths."""
        folder = increment_path(Path(save_dir), exist_ok=exist_ok)
        return [p for i, d in enumerate(self.detections)
                for p in d.crop(folder / "crops", Path(d.file).stem or f"image{i}")]

    def pandas(self) -> _Tables:
        """``.xyxy[i]`` etc. as DataFrames with our record columns (pandas needed)."""
        return _Tables(self.detections)

    def to_json(self) -> list[str]:
        """Each image's records as a JSON string."""
        return [d.to_json() for d in self.detections]


class _Tables:
    def __init__(self, detections: list[Detections]) -> None:
        frames = [d.to_df() for d in detections]
        self.xyxy = [f.drop(columns=["cx", "cy", "w", "h"]) for f in frames]
        self.xywhn = [f.drop(columns=["x1", "y1", "x2", "y2"]) for f in frames]
        self.columns = TABLE_COLUMNS


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _threshold(name: str, value: Any) -> float:
    """A hub threshold: a real number in [0, 1] (a string such as "0.5" is refused, not compared as text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value <= 1:
        raise ValueError(f"model.{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class HubModel:
    """A :class:`Detector` with yolov5's hub attributes and calling convention."""

    def __init__(self, detector: Detector) -> None:
        object.__setattr__(self, "detector", detector)
        detector.numpy_order = "rgb"

    def __getattr__(self, name: str) -> Any:
        detector = object.__getattribute__(self, "detector")
        if name in _SETTABLE:
            return getattr(detector, _SETTABLE[name])
        if name in ("names", "stride", "model", "device"):
            return getattr(detector, name)
        raise AttributeError(f"the hub model has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _SETTABLE:
            raise AttributeError(f"model.{name}: not a setting of this hub model (it would have no effect); "
                                 f"settable: {', '.join(sorted(_SETTABLE))}")
        if name in ("conf", "iou"):
            value = _threshold(name, value)
        if name == "agnostic" and not isinstance(value, bool):
            raise ValueError(f"model.agnostic must be True or False, got {value!r}")
        if name == "classes" and value is not None:
            if isinstance(value, (str, bytes)) or not all(_is_whole(c) for c in value):
                raise ValueError(f"model.classes must be class ids (ints, e.g. [0, 2]), got {value!r}")
            value = self.detector._checked_classes(list(value))
        if name == "max_det":
            value = check_max_det(value)
        if name == "numpy_order" and value not in ("bgr", "rgb"):
            raise ValueError(f"model.numpy_order must be 'bgr' or 'rgb', got {value!r}")
        setattr(self.detector, _SETTABLE[name], value)

    def __call__(self, images: Any, size: int | tuple[int, int] | None = None, augment: bool = False,
                 **kwargs) -> HubResults:
        """Detect on one source or a list; ``size`` letterboxes to that size for this call (yolov5's default
        is the size given at load); ``augment``: test-time augmentation."""
        if kwargs:
            raise TypeError(f"the hub model takes size= and augment=, not {', '.join(kwargs)}")
        detector = self.detector
        saved = detector.imgsz, detector.augment
        try:
            if size is not None:
                rounded = check_image_size(size, detector.stride, option="size")
                if detector.fixed and tuple(np.broadcast_to(rounded, 2)) != detector.imgsz:
                    raise ValueError(f"size={size}: this export takes only {detector.imgsz}")
                detector.imgsz = (rounded, rounded) if isinstance(rounded, int) else rounded
            detector.augment = augment
            return HubResults(detector.predict(images), detector.names)
        finally:
            detector.imgsz, detector.augment = saved
