"""Box formats, letterbox geometry and non-maximum suppression (torchvision.ops underneath)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchvision


def xywh_to_xyxy(boxes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """(cx, cy, w, h) -> (x1, y1, x2, y2); tensors or arrays, any leading shape."""
    if isinstance(boxes, torch.Tensor):
        return torchvision.ops.box_convert(boxes, "cxcywh", "xyxy")
    out = np.empty_like(boxes)
    half = boxes[..., 2:4] / 2
    out[..., :2] = boxes[..., :2] - half
    out[..., 2:4] = boxes[..., :2] + half
    return out


def xyxy_to_xywh(boxes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    if isinstance(boxes, torch.Tensor):
        return torchvision.ops.box_convert(boxes, "xyxy", "cxcywh")
    out = np.empty_like(boxes)
    out[..., :2] = (boxes[..., :2] + boxes[..., 2:4]) / 2
    out[..., 2:4] = boxes[..., 2:4] - boxes[..., :2]
    return out


def clip_boxes(boxes: torch.Tensor | np.ndarray, height: float, width: float) -> None:
    """Clip xyxy boxes to an image, in place."""
    if isinstance(boxes, torch.Tensor):
        boxes[..., 0::2] = boxes[..., 0::2].clamp(0, width)
        boxes[..., 1::2] = boxes[..., 1::2].clamp(0, height)
    else:
        np.clip(boxes[..., 0::2], 0, width, out=boxes[..., 0::2])
        np.clip(boxes[..., 1::2], 0, height, out=boxes[..., 1::2])


def unletterbox_boxes(boxes: torch.Tensor, gain: float | tuple[float, float], pad: tuple[float, float],
                      original_hw: tuple[int, int]) -> torch.Tensor:
    """Map xyxy boxes from the network input back to the original image: remove padding, undo the
    resize gain (a scalar or (gain_x, gain_y)), clip. Returns a new tensor."""
    gx, gy = (gain, gain) if isinstance(gain, (int, float)) else gain
    out = boxes.clone()
    out[..., [0, 2]] = (out[..., [0, 2]] - pad[0]) / gx
    out[..., [1, 3]] = (out[..., [1, 3]] - pad[1]) / gy
    clip_boxes(out, *original_hw)
    return out


def check_max_det(max_det: object) -> int:
    """``max_det`` as given, when it is a whole number >= 1 (0 or a negative count would silently drop boxes)."""
    if isinstance(max_det, bool) or not isinstance(max_det, int) or max_det < 1:
        raise ValueError(f"max_det (--max-det) must be a whole number >= 1, got {max_det!r}")
    return max_det


@dataclass
class NmsSettings:
    """How detections are filtered: thresholds in [0, 1], at most ``max_det`` (>= 1) boxes per image, every class
    of a box above the threshold (``multi_label``, validation) or its best only, ``classes`` kept (None: all),
    class-agnostic suppression, and the intersection-over-smaller of non-maximum merging (sahi's 0.5).
    ``iou_thres`` / ``max_det`` None: the model family's, decided where the model is known."""

    conf_thres: float = 0.001
    iou_thres: float | None = 0.6
    max_det: int | None = 300
    multi_label: bool = True
    classes: list[int] | None = None
    agnostic: bool = False
    merge_ios: float = 0.5

    @classmethod
    def prediction(cls, conf_thres: float = 0.25, **changes) -> NmsSettings:
        """detect.py's defaults: confidence 0.25, the model family's IoU and box count, the best class per box."""
        return cls(**{"conf_thres": conf_thres, "iou_thres": None, "max_det": None, "multi_label": False, **changes})

    def __post_init__(self) -> None:
        if self.max_det is not None:
            check_max_det(self.max_det)
        iou = 0.5 if self.iou_thres is None else self.iou_thres
        numbers = all(isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
                      for v in (self.conf_thres, iou))
        if not numbers or not 0 <= self.conf_thres <= 1 or not 0 <= iou <= 1:
            raise ValueError(f"--conf-thres and --iou-thres must be numbers in [0, 1], got {self.conf_thres!r}, "
                             f"{self.iou_thres!r}")
        if not 0 < self.merge_ios <= 1:
            raise ValueError(f"merge_ios must be in (0, 1], got {self.merge_ios}")


def non_max_suppression(prediction: torch.Tensor, conf_thres: float = 0.25, iou_thres: float = 0.45,
                        multi_label: bool = False, max_det: int = 300, classes: list[int] | None = None,
                        agnostic: bool = False, max_candidates: int = 30_000) -> list[torch.Tensor]:
    """(B, N, 5 + nc) decoded predictions -> per image an (n, 6) tensor: x1, y1, x2, y2, score, class.

    Score = objectness x class probability. ``multi_label`` keeps every class above ``conf_thres`` for a
    box (validation), otherwise only the best class (detection). Classes are kept apart by
    :func:`class_aware_nms`. No time limit: nothing is dropped.
    """
    if not 0 <= conf_thres <= 1 or not 0 <= iou_thres <= 1:
        raise ValueError(f"conf_thres and iou_thres must be in [0, 1], got {conf_thres}, {iou_thres}")
    check_max_det(max_det)
    nc = prediction.shape[2] - 5
    if nc < 1:
        raise ValueError("predictions need at least one class column")
    out = []
    for x in prediction:
        x = x[x[:, 4] > conf_thres]
        if not x.shape[0]:
            out.append(x.new_zeros((0, 6)))
            continue
        scores = x[:, 5:] * x[:, 4:5]
        boxes = xywh_to_xyxy(x[:, :4])
        if multi_label and nc > 1:
            i, j = (scores > conf_thres).nonzero(as_tuple=True)
            det = torch.cat((boxes[i], scores[i, j, None], j[:, None].to(x.dtype)), 1)
        else:
            best, j = scores.max(1, keepdim=True)
            det = torch.cat((boxes, best, j.to(x.dtype)), 1)[best.view(-1) > conf_thres]
        if classes is not None:
            det = det[torch.isin(det[:, 5], torch.tensor(classes, device=det.device, dtype=det.dtype))]
        if det.shape[0] > max_candidates:
            det = det[det[:, 4].topk(max_candidates).indices]
        if agnostic:
            keep = torchvision.ops.nms(det[:, :4], det[:, 4], iou_thres)
        else:
            keep = class_aware_nms(det[:, :4], det[:, 4], det[:, 5], iou_thres, offset_classes=det.is_cuda)
        keep = keep[:max_det]
        out.append(det[keep])
    return out


def complete_iou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise CIoU of (n, 4) cx, cy, w, h boxes.

    torchvision's ``complete_box_iou_loss`` divides width by height without an epsilon, which gives NaN
    for a predicted box whose sides both underflow to zero (a saturated sigmoid early in training); this
    keeps every term finite.
    """
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    inter_w = (torch.min(x1 + w1 / 2, x2 + w2 / 2) - torch.max(x1 - w1 / 2, x2 - w2 / 2)).clamp(0)
    inter_h = (torch.min(y1 + h1 / 2, y2 + h2 / 2) - torch.max(y1 - h1 / 2, y2 - h2 / 2)).clamp(0)
    inter = inter_w * inter_h
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(x1 + w1 / 2, x2 + w2 / 2) - torch.min(x1 - w1 / 2, x2 - w2 / 2)
    ch = torch.max(y1 + h1 / 2, y2 + h2 / 2) - torch.min(y1 - h1 / 2, y2 - h2 / 2)
    diagonal = cw**2 + ch**2 + eps
    centre_distance = (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (centre_distance / diagonal + v * alpha)


def normalized_wasserstein(box1: torch.Tensor, box2: torch.Tensor, constant: float | torch.Tensor,
                           eps: float = 1e-7) -> torch.Tensor:
    """Element-wise NWD of (n, 4) cx, cy, w, h boxes (Wang et al. 2021, "A Normalized Gaussian Wasserstein
    Distance for Tiny Object Detection"): each box is the Gaussian N((cx, cy), diag(w²/4, h²/4)), their
    2-Wasserstein distance is the Euclidean distance of (cx, cy, w/2, h/2), and NWD = exp(-W2 / ``constant``),
    the constant in the boxes' units. Unlike IoU it stays informative for tiny boxes that do not overlap."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    squared = (x1 - x2) ** 2 + (y1 - y2) ** 2 + ((w1 - w2) / 2) ** 2 + ((h1 - h2) / 2) ** 2
    return torch.exp(-torch.sqrt(squared + eps) / constant)


MERGE_SCORE_RATIO = 0.5  # a box scoring under half the best one it overlaps is a duplicate, not a piece of it


def merge_by_ios(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float = 0.5,
                 score_ratio: float = MERGE_SCORE_RATIO) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-maximum *merging* (sahi's NMM with intersection-over-smaller matching), for sliced inference: best
    score first, every lower box of the same group (class) whose intersection covers ``threshold`` of the
    smaller of the two is joined to it. Where NMS keeps one half of an object cut by a tile border, this joins
    the halves: a match scoring at least ``score_ratio`` of the best box is merged (the box grows to their
    envelope; score and class stay the best's), a weaker match is dropped as a duplicate, as NMS would drop it.
    Without that rule a low-confidence box around a whole group of objects (common at an evaluation's conf 0.001)
    would swallow them all into one envelope. Matching uses the original boxes, so merges do not chain.
    Returns (indices of the kept boxes, best first; their merged xyxy boxes)."""
    order = scores.argsort(descending=True)
    original = boxes[order]
    merged = original.clone()
    groups, ranked = groups[order], scores[order]
    areas = (original[:, 2] - original[:, 0]).clamp(0) * (original[:, 3] - original[:, 1]).clamp(0)
    alive = torch.ones(len(merged), dtype=torch.bool)
    for i in range(len(merged)):
        if not alive[i]:
            continue
        rest = torch.nonzero(alive & (groups == groups[i]), as_tuple=False).flatten()
        rest = rest[rest > i]
        if not len(rest):
            continue
        inter = (torch.min(original[i, 2:], original[rest, 2:]) - torch.max(original[i, :2], original[rest, :2]))
        ios = inter.clamp(0).prod(1) / torch.min(areas[i], areas[rest]).clamp(min=1e-9)
        matched = rest[ios >= threshold]
        pieces = matched[ranked[matched] >= score_ratio * ranked[i]]
        if len(pieces):
            group = torch.cat((merged[i:i + 1], original[pieces]), 0)
            merged[i] = torch.cat((group[:, :2].min(0).values, group[:, 2:].max(0).values))
        alive[matched] = False
    return order[alive], merged[alive]


def class_aware_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_thres: float,
                    offset_classes: bool = False) -> torch.Tensor:
    """Indices kept by NMS run within each class, best score first.

    By default torchvision's ``batched_nms`` (on CPUs one NMS per class, the fastest there). With
    ``offset_classes`` one NMS over boxes shifted apart by class (GPUs: a few launches instead of a loop over
    classes); both keep the same boxes.
    """
    if not offset_classes:
        return torchvision.ops.batched_nms(boxes, scores, classes.long(), iou_thres)
    offsets = classes.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)  # boxes may start below 0
    return torchvision.ops.nms(boxes + offsets, scores, iou_thres)


def yolo_label_rows(classes: Sequence[int], boxes_xyxy: Sequence[Sequence[float]], image_hw: tuple[int, int],
                    scores: Sequence[float] | None = None) -> list[str]:
    """Detections as YOLO label rows, ``class cx cy w h [conf]`` normalised to the image (yolov5's %g format)."""
    h, w = image_hw
    rows = []
    for k, (cls, (x1, y1, x2, y2)) in enumerate(zip(classes, boxes_xyxy)):
        values = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
        values += [scores[k]] if scores is not None else []
        rows.append(" ".join([str(int(cls))] + [f"{float(v):g}" for v in values]))
    return rows
