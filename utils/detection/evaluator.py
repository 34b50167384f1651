"""Detection metrics: one evaluator (reset / process / result) for val.py and the training loop.

Two scorers run on the same predictions:

* pycocotools on any dataset — the official instances JSON when the dataset names one, otherwise a ground
  truth built from the YOLO labels with areas in *original-image* pixels, so "small" (area < 32²) means
  the same objects at every input size. Gives the 12 COCO figures, AP_S among them.
* a fast own mAP50 / mAP50-95 (greedy IoU matching per threshold, per-class precision envelope, 101-point
  interpolation) with P and R at the best mean F1, per-class AP and the confusion matrix.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

COCO_KEYS = ["AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AR1", "AR10", "AR100", "AR_S", "AR_M", "AR_L"]
# Finer bins inside COCO's "small" (area < 32^2, original-image pixels), as tiny-object benchmarks (AI-TOD)
# use them: very tiny < 8^2, tiny 8^2-16^2, small 16^2-32^2. AP@[.5:.95] and AR (100 detections) per bin,
# the object count in n_*; NaN where a bin has no objects (shown as n/a).
TINY_BINS = {"vt": (0.0, 8.0**2), "t": (8.0**2, 16.0**2), "s16": (16.0**2, 32.0**2)}
TINY_KEYS = [f"{kind}_{b}" for kind in ("AP", "AR", "n") for b in TINY_BINS]


def format_metric(value: float | None, digits: int = 3) -> str:
    """A figure for logs: 'n/a' where there was nothing to measure (NaN or None)."""
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f}"
IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10)


def fitness(metrics: dict[str, float]) -> float:
    """Model selection score: 0.1 mAP50 + 0.9 mAP50-95."""
    return 0.1 * metrics.get("mAP50", 0.0) + 0.9 * metrics.get("mAP50_95", 0.0)


# ------------------------------------------------------------------------------------------ own metric
def match_predictions(pred_boxes: torch.Tensor, pred_cls: torch.Tensor, gt_boxes: torch.Tensor,
                      gt_cls: torch.Tensor, iou_thresholds: torch.Tensor = IOU_THRESHOLDS) -> torch.Tensor:
    """(n_pred, n_thresholds) bool: which predictions are true positives at each IoU threshold.

    Per threshold, among same-class pairs above it, each prediction keeps its best-IoU label, then each
    label goes to the first (highest-scoring: predictions come sorted by score) prediction that kept it.
    This is the reference implementation's rule; its mAP tracks pycocotools' greedy-by-score matching.
    """
    correct = torch.zeros(len(pred_boxes), len(iou_thresholds), dtype=torch.bool)
    if not len(pred_boxes) or not len(gt_boxes):
        return correct
    iou = torchvision.ops.box_iou(gt_boxes, pred_boxes)
    iou = iou * (gt_cls[:, None] == pred_cls[None, :])
    for t, threshold in enumerate(iou_thresholds.tolist()):
        gi, pi = torch.nonzero(iou >= threshold, as_tuple=True)
        if not len(gi):
            continue
        order = torch.argsort(iou[gi, pi], descending=True, stable=True)
        gi, pi = gi[order].numpy(), pi[order].numpy()
        _, best_label = np.unique(pi, return_index=True)  # result ordered by prediction index
        gi, pi = gi[best_label], pi[best_label]
        _, first_gt = np.unique(gi, return_index=True)
        correct[pi[first_gt], t] = True
    return correct


def _smooth(y: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Box filter over ``fraction`` of the points (odd width), edges padded."""
    width = round(len(y) * fraction * 2) // 2 + 1
    padded = np.concatenate((np.full(width // 2, y[0]), y, np.full(width // 2, y[-1])))
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def average_precision(recall: np.ndarray, precision: np.ndarray, closed: bool = False) -> float:
    """Area under the precision envelope, sampled at 101 recall points (trapezoids). The curve ends at (1, 0):
    straight from the last point (yolov5), or with ``closed`` dropping to 0 at the last recall (ultralytics 8)."""
    if closed:
        mrec = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0], [1.0]))
        mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    else:
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


@dataclass
class ClassStats:
    """Per-class precision, recall and AP (at ten IoU thresholds), and the curves they come from."""
    precision: np.ndarray  # (nc,) at the best-F1 confidence
    recall: np.ndarray
    ap: np.ndarray  # (nc, 10)
    classes: np.ndarray  # class indices with labels
    curves: dict[str, np.ndarray] = field(default_factory=dict)


def ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray,
                 closed_curve: bool = False) -> ClassStats:
    """Per-class AP at every IoU threshold (``closed_curve``: see :func:`average_precision`), and P/R at the
    confidence of the best mean F1."""
    order = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    classes, n_labels = np.unique(target_cls, return_counts=True)
    nc = len(classes)
    grid = np.linspace(0, 1, 1000)
    ap = np.zeros((nc, tp.shape[1]))
    p_curve, r_curve = np.zeros((nc, 1000)), np.zeros((nc, 1000))
    for ci, c in enumerate(classes):
        mask = pred_cls == c
        if not mask.any():
            continue
        tpc = tp[mask].cumsum(0)
        fpc = (1 - tp[mask]).cumsum(0)
        recall = tpc / (n_labels[ci] + 1e-16)
        precision = tpc / (tpc + fpc)
        r_curve[ci] = np.interp(-grid, -conf[mask], recall[:, 0], left=0)
        p_curve[ci] = np.interp(-grid, -conf[mask], precision[:, 0], left=1)
        for j in range(tp.shape[1]):
            ap[ci, j] = average_precision(recall[:, j], precision[:, j], closed_curve)
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + 1e-16)
    best = int(_smooth(f1.mean(0), 0.1).argmax()) if nc else 0
    return ClassStats(p_curve[:, best], r_curve[:, best], ap, classes.astype(int),
                      {"grid": grid, "precision": p_curve, "recall": r_curve, "f1": f1,
                       "classes": classes.astype(int), "ap50": ap[:, 0]})


class ConfusionMatrix:
    """(nc + 1) x (nc + 1) counts at IoU 0.45 and confidence 0.25; the last row/column is background."""

    def __init__(self, nc: int, conf: float = 0.25, iou: float = 0.45) -> None:
        self.matrix = np.zeros((nc + 1, nc + 1), dtype=np.int64)
        self.nc, self.conf, self.iou = nc, conf, iou

    def process(self, detections: torch.Tensor, gt_boxes: torch.Tensor, gt_cls: torch.Tensor) -> None:
        """Count one image's detections against its labels (the last row and column: background)."""
        det = detections[detections[:, 4] > self.conf]
        gt_c = gt_cls.long().numpy()
        det_c = det[:, 5].long().numpy()
        if not len(gt_boxes):
            np.add.at(self.matrix, (det_c, self.nc), 1)
            return
        iou = torchvision.ops.box_iou(gt_boxes, det[:, :4]).numpy()
        gi, di = np.nonzero(iou > self.iou)
        order = np.argsort(-iou[gi, di], kind="stable")
        gi, di = gi[order], di[order]
        _, keep = np.unique(di, return_index=True)
        gi, di = gi[keep], di[keep]
        _, keep = np.unique(gi, return_index=True)
        gi, di = gi[keep], di[keep]
        np.add.at(self.matrix, (det_c[di], gt_c[gi]), 1)
        np.add.at(self.matrix, (self.nc, np.delete(gt_c, gi)), 1)
        np.add.at(self.matrix, (np.delete(det_c, di), self.nc), 1)


# ------------------------------------------------------------------------------------------ COCO side
def coco_ground_truth(images: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """A COCO instances dict from YOLO labels. ``images``: dicts with id, file_name, height, width and
    labels (n, 5) normalised. Areas are box areas in original-image pixels; nothing is crowd."""
    annotations = []
    for image in images:
        h, w = image["height"], image["width"]
        for cls, cx, cy, bw, bh in np.asarray(image["labels"], dtype=np.float64).reshape(-1, 5):
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": int(cls),
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    return {
        "info": {"description": "ground truth built from YOLO labels (areas in original-image pixels)"},
        "images": [{k: image[k] for k in ("id", "file_name", "height", "width")} for image in images],
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for i, n in enumerate(names)],
    }


def load_coco_json(path: str | Path) -> dict[str, Any]:
    """An instances JSON, with the blocks pycocotools expects added when absent (``info``)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data.setdefault("info", {})
    data.setdefault("licenses", [])
    return data


def tiny_bins_line(coco: dict[str, float]) -> str:
    """The tiny-object bins as one log line: 'AP_vt (<8², 12 objects) 0.051 AR 0.210 | ...'."""
    labels = {"vt": "<8²", "t": "8-16²", "s16": "16-32²"}
    parts = []
    for b, label in labels.items():
        n = coco.get(f"n_{b}")
        count = "?" if n is None else int(n)
        parts.append(f"AP_{b} ({label} px, {count} objects) {format_metric(coco.get(f'AP_{b}'))} "
                     f"AR {format_metric(coco.get(f'AR_{b}'))}")
    return " | ".join(parts)


EVALUATORS = ("faster-coco-eval", "pycocotools")


def default_evaluator() -> str:
    """faster-coco-eval (a C++ COCOeval, the same figures) where it is installed, else pycocotools."""
    import importlib.util

    return EVALUATORS[0] if importlib.util.find_spec("faster_coco_eval") else EVALUATORS[1]


def run_cocoeval(ground_truth: dict[str, Any], predictions: list[dict[str, Any]],
                 image_ids: list[int] | None = None, evaluator: str | None = None) -> tuple[dict[str, float], str]:
    """COCO bbox evaluation with ``evaluator`` (faster-coco-eval or pycocotools; None: the default). Returns the
    12 COCO figures and the tiny-object bins, and the evaluator's printed summary."""
    evaluator = evaluator or default_evaluator()
    if evaluator not in EVALUATORS:
        raise ValueError(f"--evaluator {evaluator}: choose {' or '.join(EVALUATORS)}")
    counts = _tiny_bin_counts(ground_truth, image_ids)
    if not predictions:  # 0 where there are objects to find; n/a (NaN) for a size range without any, as below
        sizes = _tiny_bin_counts(ground_truth, image_ids, COCO_SIZE_RANGES)
        coco = {k: (0.0 if k[-2:] not in ("_S", "_M", "_L") or sizes[k[-1]] else math.nan) for k in COCO_KEYS}
        empty = {f"{kind}_{b}": (0.0 if counts[b] else math.nan) for kind in ("AP", "AR") for b in TINY_BINS}
        return {**coco, **empty, **{f"n_{b}": float(n) for b, n in counts.items()}}, \
            "no predictions: every COCO figure is 0 (n/a for size ranges without objects)"
    dataset = copy.deepcopy(ground_truth) if "info" not in ground_truth else dict(ground_truth)
    dataset.setdefault("info", {})
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        if evaluator == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
        else:
            from faster_coco_eval import COCO
            from faster_coco_eval import COCOeval_faster as COCOeval
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        scorer = COCOeval(gt, gt.loadRes(predictions), "bbox")
        if image_ids is not None:
            scorer.params.imgIds = image_ids
        # the tiny bins ride along as extra area ranges after COCO's four
        scorer.params.areaRng = list(scorer.params.areaRng)[:4] + [list(r) for r in TINY_BINS.values()]
        scorer.params.areaRngLbl = list(scorer.params.areaRngLbl)[:4] + list(TINY_BINS)
        scorer.evaluate()
        scorer.accumulate()
        scorer.summarize()
    figures = summary_figures(scorer.eval["precision"], scorer.eval["recall"], list(scorer.params.iouThrs),
                              list(scorer.params.areaRngLbl), list(scorer.params.maxDets))
    for b in TINY_BINS:
        for kind in ("AP", "AR"):  # a bin with objects but no detection in it scores 0, without objects n/a
            value = figures.pop(f"{kind}@{b}")
            figures[f"{kind}_{b}"] = value if counts[b] and not math.isnan(value) else (0.0 if counts[b] else math.nan)
        figures[f"n_{b}"] = float(counts[b])
    return figures, buffer.getvalue()


def summary_figures(precision: np.ndarray, recall: np.ndarray, iou_thresholds: list[float], areas: list[str],
                    max_dets: list[int]) -> dict[str, float]:
    """COCOeval's summary, read from its accumulated arrays (precision: iou x recall x class x area x maxDets,
    recall: iou x class x area x maxDets; -1 = nothing to score, giving NaN): the 12 COCO figures, and AP / AR at
    100 detections per extra area range as ``AP@<label>`` / ``AR@<label>``."""
    def mean(values: np.ndarray) -> float:
        kept = values[values > -1]
        return float(kept.mean()) if kept.size else math.nan

    area, top = {label: i for i, label in enumerate(areas)}, max_dets.index(max(max_dets))
    iou = {round(t, 2): i for i, t in enumerate(iou_thresholds)}
    figures = {
        "AP": mean(precision[:, :, :, 0, top]), "AP50": mean(precision[iou[0.5], :, :, 0, top]),
        "AP75": mean(precision[iou[0.75], :, :, 0, top]),
        **{f"AP_{s}": mean(precision[:, :, :, area[name], top]) for s, name in zip("SML", ("small", "medium",
                                                                                            "large"))},
        **{f"AR{d}": mean(recall[:, :, 0, max_dets.index(d)]) for d in (1, 10, 100)},
        **{f"AR_{s}": mean(recall[:, :, area[name], top]) for s, name in zip("SML", ("small", "medium", "large"))},
    }
    for label in areas[4:]:
        figures[f"AP@{label}"] = mean(precision[:, :, :, area[label], top])
        figures[f"AR@{label}"] = mean(recall[:, :, area[label], top])
    return figures


COCO_SIZE_RANGES = {"S": (0.0, 32.0**2), "M": (32.0**2, 96.0**2), "L": (96.0**2, 1e5**2)}  # pycocotools' own


def _tiny_bin_counts(ground_truth: dict[str, Any], image_ids: list[int] | None,
                     bins: dict[str, tuple[float, float]] = TINY_BINS) -> dict[str, int]:
    """Non-crowd objects per area bin (pycocotools' rule: area within [low, high])."""
    wanted = set(image_ids) if image_ids is not None else None
    counts = dict.fromkeys(bins, 0)
    for ann in ground_truth.get("annotations", []):
        if ann.get("iscrowd", 0) or (wanted is not None and ann["image_id"] not in wanted):
            continue
        area = ann.get("area", 0.0)
        for b, (low, high) in bins.items():
            if low <= area <= high:
                counts[b] += 1
    return counts


# ------------------------------------------------------------------------------------------- evaluator
class DetectionEvaluator:
    """Collects per-image predictions (original pixels) and labels, then scores them both ways.

    ``official_json``: a COCO instances file whose images are matched by file name and whose category
    ids are the sorted ids of its categories (COCO's 80 -> 91 mapping); else the ground truth is built
    from the labels given to :meth:`process`. ``closed_pr_curve``: mAP as ultralytics 8 computes it (see
    :func:`average_precision`), for the models it trains; the COCO figures are the same either way.
    """

    def __init__(self, names: list[str], official_json: str | Path | None = None,
                 use_pycocotools: bool = True, coco_evaluator: str | None = None,
                 closed_pr_curve: bool = False) -> None:
        self.names = list(names)
        self.closed_pr_curve = closed_pr_curve
        self.coco_evaluator = coco_evaluator  # faster-coco-eval or pycocotools; None: default_evaluator()
        self.nc = len(names)
        self.official = load_coco_json(official_json) if official_json else None
        self.use_pycocotools = use_pycocotools
        if self.official is not None:
            self.category_ids = sorted(c["id"] for c in self.official["categories"])
            self.image_ids = {Path(im["file_name"]).name: im["id"] for im in self.official["images"]}
        self.reset()

    def reset(self) -> None:
        """Forget every processed image."""
        self.stats: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.coco_predictions: list[dict[str, Any]] = []
        self.gt_images: list[dict[str, Any]] = []
        self.seen_ids: list[int] = []
        self.confusion = ConfusionMatrix(self.nc)

    def _image_id(self, path: str) -> int:
        name = Path(path).name
        if self.official is not None:
            if name not in self.image_ids:
                raise KeyError(f"{path}: not in the annotations JSON")
            return self.image_ids[name]
        return len(self.gt_images)

    def process(self, detections: torch.Tensor, labels: np.ndarray, path: str,
                original_hw: tuple[int, int]) -> None:
        """One image: detections (n, 6) xyxy score class in original pixels; labels (m, 5) normalised."""
        detections = detections.detach().float().cpu()
        h, w = original_hw
        image_id = self._image_id(path)
        labels = np.asarray(labels, dtype=np.float32).reshape(-1, 5)
        gt_boxes = torch.from_numpy(labels[:, 1:]).double()
        gt_boxes = torchvision.ops.box_convert(gt_boxes * torch.tensor([w, h, w, h]), "cxcywh", "xyxy").float()
        gt_cls = torch.from_numpy(labels[:, 0])
        tp = match_predictions(detections[:, :4], detections[:, 5], gt_boxes, gt_cls)
        self.stats.append((tp.numpy(), detections[:, 4].numpy(), detections[:, 5].numpy(), labels[:, 0]))
        self.confusion.process(detections, gt_boxes, gt_cls)
        if self.official is None:
            self.gt_images.append({"id": image_id, "file_name": Path(path).name, "height": int(h),
                                   "width": int(w), "labels": labels})
        self.seen_ids.append(image_id)
        if self.use_pycocotools:
            self.coco_predictions.extend(self.to_coco(detections, image_id))

    def to_coco(self, detections: torch.Tensor, image_id: int) -> list[dict[str, Any]]:
        """COCO result records (xywh rounded to 0.001 px, score to 1e-5), rounded as arrays: per-value Python
        rounding took half of a small validation's scoring time."""
        values = detections[:, :6].double().numpy().copy()
        values[:, 2:4] -= values[:, :2]
        boxes, scores = np.round(values[:, :4], 3).tolist(), np.round(values[:, 4], 5).tolist()
        classes = values[:, 5].astype(np.int64)
        categories = (np.asarray(self.category_ids)[classes] if self.official is not None else classes).tolist()
        return [{"image_id": image_id, "category_id": c, "bbox": b, "score": s}
                for b, s, c in zip(boxes, scores, categories)]

    def ground_truth(self) -> dict[str, Any]:
        """The COCO-format ground truth scored against (official JSON, or built from the labels)."""
        if self.official is not None:
            return self.official
        return coco_ground_truth(self.gt_images, self.names)

    def result(self) -> dict[str, Any]:
        """Own P, R, mAP50, mAP50_95 (+ per-class AP) and the 12 pycocotools figures."""
        out: dict[str, Any] = {"images": len(self.stats)}
        if self.stats:
            tp, conf, pred_cls, target_cls = (np.concatenate(x, 0) for x in zip(*self.stats))
        else:
            tp, conf, pred_cls, target_cls = np.zeros((0, 10)), np.zeros(0), np.zeros(0), np.zeros(0)
        out["instances"] = int(len(target_cls))
        if len(tp) and len(target_cls):
            cs = ap_per_class(tp.astype(np.float64), conf, pred_cls, target_cls, self.closed_pr_curve)
            out.update(P=float(cs.precision.mean()), R=float(cs.recall.mean()),
                       mAP50=float(cs.ap[:, 0].mean()), mAP50_95=float(cs.ap.mean()))
            counts = np.bincount(target_cls.astype(int), minlength=self.nc)
            out["per_class"] = [
                {"class": self.names[c], "instances": int(counts[c]), "P": float(cs.precision[i]),
                 "R": float(cs.recall[i]), "AP50": float(cs.ap[i, 0]), "AP50_95": float(cs.ap[i].mean())}
                for i, c in enumerate(cs.classes)]
            out["curves"] = cs.curves
        else:
            out.update(P=0.0, R=0.0, mAP50=0.0, mAP50_95=0.0, per_class=[])
        if self.use_pycocotools:
            coco, summary = run_cocoeval(self.ground_truth(), self.coco_predictions, self.seen_ids,
                                         self.coco_evaluator)
            out["coco"], out["coco_summary"] = coco, summary
        return out
