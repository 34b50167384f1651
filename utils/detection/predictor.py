"""The Python inference API, used by detect.py.

    from utils.detection.predictor import Detector
    detector = Detector("weights/best.pt")
    for det in detector.predict(["bus.jpg", numpy_bgr_image]):
        print(det.names_of(), det.scores, det.boxes)   # boxes: x1, y1, x2, y2 in original pixels
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from utils.boxes import class_aware_nms, merge_by_ios, non_max_suppression, unletterbox_boxes
from utils.data.augmentations import letterbox
from utils.data.images import read_image
from utils.data.tiles import tile_origins
from utils.deploy.backends import load_any
from utils.distributed import select_device
from utils.image_size import check_image_size
from utils.logging import LOGGER
from utils.precision import half_inputs, inference_autocast, inference_half


@dataclass
class Detections:
    """Detections of one image, in its original pixels."""

    boxes: np.ndarray  # (n, 4) x1 y1 x2 y2
    scores: np.ndarray  # (n,)
    classes: np.ndarray  # (n,) int
    names: list[str]
    image_shape: tuple[int, int]  # (h, w)
    source: str = ""

    def names_of(self) -> list[str]:
        return [self.names[int(c)] for c in self.classes]

    def to_list(self) -> list[dict]:
        return [{"class": self.names[int(c)], "class_id": int(c), "conf": float(s),
                 "xyxy": [float(v) for v in b]}
                for b, s, c in zip(self.boxes, self.scores, self.classes)]

    def __len__(self) -> int:
        return len(self.boxes)


def _memory_of(device: torch.device) -> str | None:
    return str(device) if device.type == "cuda" else None


class Detector:
    """Load any supported weights file once; predict on images (numpy BGR, paths or lists of them)."""

    def __init__(self, weights: str | Path, device: str = "", imgsz: int = 640, conf_thres: float = 0.25,
                 iou_thres: float = 0.45, max_det: int = 1000, classes: list[int] | None = None,
                 agnostic: bool = False, half: bool = False, merge_ios: float = 0.5,
                 model: torch.nn.Module | None = None) -> None:
        """``model``: the inference model of ``weights`` already loaded on ``device`` (val.py --slice), so
        it is not read twice; ``half`` is then taken as already decided."""
        self.device = select_device(device)
        if model is None:
            self.model = load_any(weights, self.device).for_inference()
            self.half, line = inference_half(self.model, self.device, half)
            if line:
                LOGGER.info(line)
        else:
            self.model, self.half = model, half
        self.names = list(self.model.names)
        self.stride = int(self.model.stride.max())
        fixed = getattr(self.model, "fixed_shape", None)
        if fixed is not None and fixed[0] != fixed[1]:
            raise ValueError(f"{weights}: exported for {fixed[0]}x{fixed[1]} inputs; detect letterboxes to a square "
                             f"(export a square --imgsz or use --dynamic)")
        self.fixed = fixed is not None
        self.imgsz = fixed[0] if fixed is not None else check_image_size(imgsz, self.stride,
                                                                         device=_memory_of(self.device))
        self.conf_thres, self.iou_thres, self.max_det = conf_thres, iou_thres, max_det
        if classes is not None:
            outside = [c for c in classes if not 0 <= int(c) < len(self.names)]
            if outside:
                shown = ", ".join(self.names[:3]) + (", ..." if len(self.names) > 3 else "")
                raise ValueError(f"--classes {' '.join(map(str, classes))}: {weights} has classes "
                                 f"0..{len(self.names) - 1} ({shown}); {outside} not among them")
        self.classes, self.agnostic = classes, agnostic
        self.merge_ios = merge_ios  # the intersection-over-smaller of --merge nmm (sahi's default 0.5)

    @torch.no_grad()
    def _run(self, image: np.ndarray) -> torch.Tensor:
        """One BGR image -> (n, 6) detections in its pixels (before any cross-tile merge)."""
        h0, w0 = image.shape[:2]
        padded, gain, pad = letterbox(image, (self.imgsz, self.imgsz), scale_up=True, stride=self.stride,
                                      minimal=not self.fixed)  # a static export takes exactly its size
        x = torch.from_numpy(np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1))).to(self.device)
        x = (x.half() if half_inputs(self.device, self.half) else x.float()).div_(255).unsqueeze(0)
        with inference_autocast(self.device, self.half):
            predictions = self.model(x)
        det = non_max_suppression(predictions.float(), self.conf_thres, self.iou_thres, multi_label=False,
                                  max_det=self.max_det, classes=self.classes, agnostic=self.agnostic)[0]
        det = det.cpu()
        det[:, :4] = unletterbox_boxes(det[:, :4], gain, pad, (h0, w0))
        return det

    def predict_one(self, image: np.ndarray, source: str = "", slice_hw: tuple[int, int] | None = None,
                    overlap: float = 0.2, merge: str = "nms") -> Detections:
        """Detect on one BGR image; with ``slice_hw`` also on overlapping H x W tiles, merged with the full
        image's detections by class-aware NMS (``merge="nms"``) or by non-maximum merging with
        intersection-over-smaller matching (``merge="nmm"``, :func:`utils.boxes.merge_by_ios`)."""
        det = self.predict_tensors(image, slice_hw, overlap, merge)[1]
        return Detections(det[:, :4].numpy(), det[:, 4].numpy(), det[:, 5].numpy().astype(int), self.names,
                          image.shape[:2], source)

    def predict_tensors(self, image: np.ndarray, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
                        merge: str = "nms") -> tuple[torch.Tensor, torch.Tensor]:
        """(the full image's (n, 6) detections, the final ones: with tiles merged when ``slice_hw``)."""
        if merge not in ("nms", "nmm"):
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

    def __call__(self, source: np.ndarray | str | Path | list, **kwargs) -> list[Detections]:
        """``detector(images)`` is :meth:`predict` (the hub model's calling convention)."""
        return self.predict(source, **kwargs)

    def predict(self, source: np.ndarray | str | Path | list, slice_hw: tuple[int, int] | None = None,
                overlap: float = 0.2) -> list[Detections]:
        """A numpy BGR image, a path, or a list of them -> one Detections per image."""
        items = source if isinstance(source, list) else [source]
        out = []
        for item in items:
            if isinstance(item, np.ndarray):
                out.append(self.predict_one(item, "", slice_hw, overlap))
            else:
                out.append(self.predict_one(read_image(item), str(item), slice_hw, overlap))
        return out
