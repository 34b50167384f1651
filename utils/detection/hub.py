"""The torch.hub model, behaving as yolov5's does:

    model = torch.hub.load("path/to/yolov5-spd", "custom", path="best.pt", source="local")
    model.conf, model.iou, model.classes, model.max_det, model.agnostic = 0.5, 0.45, [0, 2], 100, False
    results = model(["bus.jpg", rgb_array, pil_image], size=640, augment=False)
    results.print(); results.save(); results.crop(save=True); df = results.pandas().xyxy[0]  # xmin ... name
    results.xyxy[0]     # (n, 6) tensor: x1 y1 x2 y2 conf class, as yolov5's hub

Numpy arrays given to the hub are **RGB**, as yolov5's hub expects (``model.numpy_order = "bgr"`` for
OpenCV frames); files, URLs and PIL images carry their own order. Setting an attribute the hub does not
use is an AttributeError, never a silent no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from utils.boxes import NmsSettings, check_max_det
from utils.checkpoints.files import WEIGHTS_DIR, resolve_weights
from utils.checkpoints.format import CheckpointError
from utils.detection.prediction import Detector
from utils.detection.results import Detections
from utils.distributed import select_device
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path
from utils.paths import safe_path_component

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

    def crop(self, save: bool = True, save_dir: str | Path = "runs/detect/exp", exist_ok: bool = False) -> list[dict]:
        """yolov5's crops: one dict per box (``box``, ``conf``, ``cls``, ``label``, ``im``: the BGR crop); with
        ``save`` each is also written to ``<save_dir>/crops/<class>/<image stem>[_k].jpg`` (``file`` in the dict)."""
        folder = increment_path(Path(save_dir), exist_ok=exist_ok) if save else None
        crops = []
        for i, d in enumerate(self.detections):
            image = d._require_image()
            stem = Path(d.file).stem or f"image{i}"
            for k, (box, conf, cls) in enumerate(zip(d.xyxy, d.scores, d.classes)):
                x1, y1, x2, y2 = (int(round(float(v))) for v in box)
                crop = {"box": [float(v) for v in box], "conf": float(conf), "cls": int(cls),
                        "label": f"{d.names[int(cls)]} {float(conf):.2f}",
                        "im": image[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)]}
                if folder is not None and crop["im"].size:
                    path = folder / "crops" / safe_path_component(d.names[int(cls)]) / f"{stem}_{k}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(path), crop["im"])
                    crop["file"] = path
                crops.append(crop)
        if folder is not None:
            LOGGER.info(f"saved {sum('file' in c for c in crops)} crops to {folder / 'crops'}")
        return crops

    def show(self) -> None:
        """Show each annotated image in a window (one line where there is no display)."""
        for d in self.detections:
            d.show()

    def tolist(self) -> list[HubResults]:
        """One HubResults per image, as yolov5's ``Detections.tolist``."""
        return [HubResults([d], self.names) for d in self.detections]

    @property
    def files(self) -> list[str]:
        """The image file names (yolov5's ``files``)."""
        return [d.file or f"image{i}.jpg" for i, d in enumerate(self.detections)]

    @property
    def ims(self) -> list[np.ndarray | None]:
        """The BGR images detected on."""
        return [d.image for d in self.detections]

    def pandas(self) -> _Tables:
        """``.xyxy[i]``, ``.xyxyn[i]``, ``.xywh[i]``, ``.xywhn[i]``: one DataFrame per image with yolov5's hub
        columns (``xmin ymin xmax ymax`` or ``xcenter ycenter width height``, then ``confidence class name``).
        pandas is optional: one line when it is missing."""
        return _Tables(self.detections)

    def to_json(self) -> list[str]:
        """Each image's records as a JSON string."""
        return [d.to_json() for d in self.detections]


CORNER_COLUMNS = ["xmin", "ymin", "xmax", "ymax", "confidence", "class", "name"]
CENTRE_COLUMNS = ["xcenter", "ycenter", "width", "height", "confidence", "class", "name"]


class _Tables:
    """yolov5's ``results.pandas()``: a list of DataFrames per box form."""

    def __init__(self, detections: list[Detections]) -> None:
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("results.pandas() needs pandas (pip install pandas); results.to_json() and each "
                              "image's to_csv() give the same table without it") from None

        def frames(form: str, columns: list[str]) -> list:
            return [pd.DataFrame([[*map(float, box), float(conf), int(cls), d.names[int(cls)]]
                                  for box, conf, cls in zip(getattr(d, form), d.scores, d.classes)],
                                 columns=columns) for d in detections]

        self.xyxy, self.xyxyn = frames("xyxy", CORNER_COLUMNS), frames("xyxyn", CORNER_COLUMNS)
        self.xywh, self.xywhn = frames("xywh", CENTRE_COLUMNS), frames("xywhn", CENTRE_COLUMNS)


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


def hub_model(path: str, device: str = "", conf: float = 0.25, iou: float | None = None, imgsz: int = 640,
              autoshape: bool = True) -> HubModel:
    """hubconf's ``custom``: any supported weights file as a hub model."""
    _require_autoshape(autoshape)
    nms = NmsSettings.prediction(conf, iou_thres=iou)
    return HubModel(Detector(resolve_weights(path), device=device, imgsz=imgsz, nms=nms))


def _require_autoshape(autoshape: bool) -> None:
    if not autoshape:
        raise ValueError("autoshape=False (a raw model) is not offered: the hub model letterboxes, runs NMS and "
                         "returns results; load the checkpoint with models.loading.load_model for the raw module")


def local_weights(config: str, weights: str | None) -> Path:
    """``weights`` as given, else ``<config>.pt`` in ./weights/, the package's weights/ or the current folder;
    one line saying where it looked when there is none (nothing is downloaded)."""
    if weights:
        return resolve_weights(weights)
    for place in (Path("weights") / f"{config}.pt", WEIGHTS_DIR / f"{config}.pt", Path(f"{config}.pt")):
        if place.is_file():
            return place
    raise CheckpointError(f"{config}: pretrained weights are read from a local file and never downloaded, and "
                          f"there is no {config}.pt in ./weights/, {WEIGHTS_DIR} or the current folder; pass "
                          f"weights='path/to/{config}.pt', or pretrained=False for the untrained model")


def named_hub_model(config: str, pretrained: bool = True, weights: str | None = None, classes: int = 80,
                    **settings: Any) -> HubModel:
    """A named hub entry point: the ``config`` graph, pretrained from a local file checked to be that graph, or
    untrained with ``classes`` classes. ``settings``: device, conf, iou, imgsz and autoshape, as ``custom``."""
    from models.yolo import DetectionModel

    _require_autoshape(settings.pop("autoshape", True))
    device, imgsz = select_device(settings.pop("device", "")), settings.pop("imgsz", 640)
    nms = NmsSettings.prediction(settings.pop("conf", 0.25), iou_thres=settings.pop("iou", None))
    if settings:
        raise TypeError(f"{config}: unknown settings {', '.join(settings)}")
    if not pretrained:
        model = DetectionModel(f"{config}.yaml", nc=classes).to(device)
        return HubModel(Detector(f"{config}.yaml", device, imgsz, nms, model=model.for_inference()))
    path = local_weights(config, weights)
    detector = Detector(path, device=device, imgsz=imgsz, nms=nms)
    expected = DetectionModel(f"{config}.yaml", nc=len(detector.names)).for_inference()
    if _shapes(expected) != _shapes(detector.model):
        raise CheckpointError(f"{path}: not a {config} model (its layers differ from {config}.yaml); load it with "
                              f"torch.hub.load(..., 'custom', path='{path}')")
    return HubModel(detector)


def _shapes(model: torch.nn.Module) -> list[tuple]:
    return [tuple(p.shape) for p in model.state_dict().values()]
