"""The two detection head families and what differs between them: the loss and its hyp keys, the results
columns, the NMS IoU and the image convention they are scored with. The task, val.py and detect.py look the
family up here; a new head family is a new entry, not a branch through the task.

- ``anchor-based``: YOLOv5 / YOLOv5-SPD (``Detect``): anchors and AutoAnchor, objectness, yolov5's recipe.
- ``anchor-free``: YOLOv8 / YOLO11 (``AnchorFreeDetect``): task-aligned assignment, DFL, ultralytics' recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from utils.data.augmentations import ULTRALYTICS_PREPROCESSING, YOLOV5_PREPROCESSING, Preprocessing
from utils.detection.anchor_based_loss import LossGains, YoloLoss
from utils.detection.anchor_free_loss import AnchorFreeGains, AnchorFreeLoss
from utils.detection.evaluator import COCO_KEYS, TINY_KEYS
from utils.detection.options import ANCHOR_FREE_HYP, DETECTION_HYP
from utils.engine.config import HypSchema


@dataclass(frozen=True)
class HeadFamily:
    """Everything the detection task, val.py and detect.py do differently for one kind of head."""

    name: str
    loss_names: tuple[str, str, str]
    hyp_schema: HypSchema
    default_hyp: str  # a new run's hyp file
    val_iou: float  # validation NMS IoU (yolov5 0.6, ultralytics 0.7)
    predict_iou: float  # detect.py NMS IoU (yolov5 0.45, ultralytics 0.7)
    predict_max_det: int  # detect.py's most boxes per image (yolov5 1000, ultralytics 300)
    preprocessing: Preprocessing
    closed_pr_curve: bool  # mAP's precision-recall curve as ultralytics 8 closes it (metrics.average_precision)
    has_anchors: bool
    build_loss: Callable[[Any, dict, float, int], Any]  # (model, hyp, label smoothing, image size) -> loss

    @property
    def csv_keys(self) -> list[str]:
        """results.csv's columns: the three losses, P R mAP, the validation losses, learning rates, COCO figures."""
        train = [f"train/{n}_loss" for n in self.loss_names]
        val = [f"val/{n}_loss" for n in self.loss_names]
        return (train + ["metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95"] + val
                + ["x/lr0", "x/lr1", "x/lr2"] + [f"coco/{k}" for k in COCO_KEYS + TINY_KEYS])


def _anchor_based_loss(model, hyp: dict, label_smoothing: float, imgsz: int) -> YoloLoss:
    return YoloLoss(model.detect.anchors, model.nc, LossGains.from_hyp(hyp, label_smoothing), imgsz,
                    strides=model.stride.tolist())


def _anchor_free_loss(model, hyp: dict, label_smoothing: float, imgsz: int) -> AnchorFreeLoss:
    if label_smoothing:
        raise ValueError("--label-smoothing is not part of the anchor-free loss (YOLOv8 / YOLO11); leave it at 0")
    return AnchorFreeLoss(model.nc, model.stride.tolist(), model.detect.reg_max, AnchorFreeGains.from_hyp(hyp))


ANCHOR_BASED = HeadFamily("anchor-based", ("box", "obj", "cls"), DETECTION_HYP, "hyp.quick.yaml", 0.6, 0.45, 1000,
                          YOLOV5_PREPROCESSING, False, True, _anchor_based_loss)
ANCHOR_FREE = HeadFamily("anchor-free", ("box", "cls", "dfl"), ANCHOR_FREE_HYP, "hyp.anchor_free.yaml", 0.7, 0.7, 300,
                         ULTRALYTICS_PREPROCESSING, True, False, _anchor_free_loss)


def family_of(model: torch.nn.Module | Any) -> HeadFamily:
    """The family of a model, an ensemble or an export (they all carry ``anchor_based``)."""
    return ANCHOR_BASED if getattr(model, "anchor_based", True) else ANCHOR_FREE


def family_of_config(config: dict | None) -> HeadFamily:
    """The family a model config builds (its last row's head), without building it."""
    rows = list((config or {}).get("head") or [])
    last = rows[-1] if rows else None
    head = last[2] if isinstance(last, (list, tuple)) and len(last) == 4 else None
    anchorless = head == "AnchorFreeDetect" or (head == "Detect" and isinstance(last[3], list)
                                                and len(last[3]) == 1 and "anchors" not in config)
    return ANCHOR_FREE if anchorless else ANCHOR_BASED
