"""The task-aligned assigner of the anchor-free head (TOOD, Feng et al., ICCV 2021; as ultralytics 8.4 runs it).

Each ground-truth box scores the anchor points whose centres lie inside it by ``score^alpha * CIoU^beta`` (score:
the predicted probability of the box's class, CIoU: of the predicted box), keeps its ``topk`` best, and an
anchor claimed by several boxes goes to the one it overlaps most. Target scores are the one-hot class scaled so
that each box's best-aligned anchor gets that box's best IoU. Boxes with a side under the middle stride are
widened to it for the inside test only, so a tiny object still finds candidate anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from utils.boxes import complete_iou


@dataclass
class Assignment:
    """Per anchor point: target class scores (B, N, nc), target boxes xyxy in pixels (B, N, 4), foreground
    mask (B, N), and the index of the assigned ground truth in its image (B, N)."""

    scores: torch.Tensor
    boxes: torch.Tensor
    foreground: torch.Tensor
    gt_index: torch.Tensor


def xyxy_complete_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise CIoU of (..., 4) x1, y1, x2, y2 boxes."""
    def to_cxcywh(x: torch.Tensor) -> torch.Tensor:
        return torch.cat(((x[..., :2] + x[..., 2:]) / 2, x[..., 2:] - x[..., :2]), -1)

    return complete_iou(to_cxcywh(a), to_cxcywh(b))


class TaskAlignedAssigner:
    """Callable: (scores (B, N, nc) probabilities, predicted boxes (B, N, 4) xyxy px, anchor centres (N, 2) px,
    gt classes (B, M, 1), gt boxes (B, M, 4) xyxy px, gt mask (B, M, 1)) -> :class:`Assignment`."""

    def __init__(self, nc: int, topk: int = 10, alpha: float = 0.5, beta: float = 6.0,
                 strides: list[float] | tuple[float, ...] = (8, 16, 32), eps: float = 1e-9) -> None:
        self.nc, self.topk, self.alpha, self.beta, self.eps = nc, topk, alpha, beta, eps
        self.min_side = float(strides[1] if len(strides) > 1 else strides[0])

    @torch.no_grad()
    def __call__(self, scores: torch.Tensor, pred_boxes: torch.Tensor, centres: torch.Tensor,
                 gt_classes: torch.Tensor, gt_boxes: torch.Tensor, gt_mask: torch.Tensor) -> Assignment:
        b, n = scores.shape[:2]
        m = gt_boxes.shape[1]
        if m == 0:
            return Assignment(torch.zeros_like(scores), torch.zeros_like(pred_boxes),
                              torch.zeros((b, n), dtype=torch.bool, device=scores.device),
                              torch.zeros((b, n), dtype=torch.long, device=scores.device))
        inside = self._centres_inside(centres, gt_boxes, gt_mask)  # (B, M, N)
        metric, overlaps = self._alignment(scores, pred_boxes, gt_classes, gt_boxes, inside & gt_mask.bool())
        positive = self._top_candidates(metric, gt_mask.bool()) & inside & gt_mask.bool()
        positive, foreground, gt_index = self._one_box_per_anchor(positive, overlaps)
        # targets of each anchor from its box
        flat_index = gt_index + torch.arange(b, device=gt_index.device).view(b, 1) * m
        labels = gt_classes.long().flatten()[flat_index].clamp_(0)
        boxes = gt_boxes.reshape(-1, 4)[flat_index]
        target = torch.zeros((b, n, self.nc), dtype=scores.dtype, device=scores.device)
        target.scatter_(2, labels.unsqueeze(-1), 1.0)
        target *= foreground.unsqueeze(-1)
        # scale: each box's anchors by metric / best metric of the box x best IoU of the box
        metric = metric * positive
        overlaps = overlaps * positive
        best_metric = metric.amax(-1, keepdim=True)
        best_overlap = overlaps.amax(-1, keepdim=True)
        normalised = (metric * best_overlap / (best_metric + self.eps)).amax(-2).unsqueeze(-1)
        return Assignment(target * normalised, boxes, foreground, gt_index)

    def _centres_inside(self, centres: torch.Tensor, gt_boxes: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
        centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2
        size = gt_boxes[..., 2:] - gt_boxes[..., :2]
        size = torch.where((size < self.min_side) & gt_mask.bool(), torch.full_like(size, self.min_side), size)
        low, high = (centre - size / 2).unsqueeze(2), (centre + size / 2).unsqueeze(2)  # (B, M, 1, 2)
        return ((centres - low).amin(-1) > self.eps) & ((high - centres).amin(-1) > self.eps)

    def _alignment(self, scores: torch.Tensor, pred_boxes: torch.Tensor, gt_classes: torch.Tensor,
                   gt_boxes: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img, box, anchor = candidates.nonzero(as_tuple=True)
        class_score = scores[img, anchor, gt_classes[img, box, 0].long()]
        iou = xyxy_complete_iou(gt_boxes[img, box], pred_boxes[img, anchor]).clamp_(0)
        metric = torch.zeros(candidates.shape, dtype=scores.dtype, device=scores.device)
        overlaps = torch.zeros(candidates.shape, dtype=pred_boxes.dtype, device=scores.device)
        metric[img, box, anchor] = class_score.pow(self.alpha) * iou.pow(self.beta)
        overlaps[img, box, anchor] = iou
        return metric, overlaps

    def _top_candidates(self, metric: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
        """The ``topk`` best anchors of each real box (an index chosen twice, as padding boxes do, is dropped)."""
        k = min(self.topk, metric.shape[-1])
        index = metric.topk(k, dim=-1).indices.masked_fill_(~gt_mask.expand(-1, -1, k), 0)
        count = torch.zeros(metric.shape, dtype=torch.int8, device=metric.device)
        count.scatter_add_(-1, index, torch.ones_like(index, dtype=torch.int8))
        return count == 1

    @staticmethod
    def _one_box_per_anchor(positive: torch.Tensor, overlaps: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """An anchor claimed by several boxes keeps the one it overlaps most."""
        claimed = positive.sum(-2, keepdim=True) > 1  # (B, 1, N)
        best = torch.zeros_like(positive)
        best.scatter_(1, overlaps.argmax(1, keepdim=True), True)
        positive = torch.where(claimed, best, positive)
        foreground, gt_index = positive.to(torch.int8).max(-2)
        return positive, foreground.bool(), gt_index
