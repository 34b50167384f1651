"""The loss of the anchor-free head (YOLOv8 / YOLO11): task-aligned assignment, BCE classification against the
aligned scores, CIoU box loss and distribution focal loss (DFL) on the side distances, as ultralytics 8.4 trains.

Inputs are explicit (class count, strides, reg_max, gains): nothing is read off a model object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from models.anchor_free_head import anchor_points, distances_to_boxes
from utils.detection.assigner import TaskAlignedAssigner, xyxy_complete_iou


@dataclass
class AnchorFreeGains:
    """ultralytics' default gains: box 7.5, cls 0.5, dfl 1.5; the assigner's top-k 10, alpha 0.5, beta 6."""

    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5
    topk: int = 10
    alpha: float = 0.5
    beta: float = 6.0

    @classmethod
    def from_hyp(cls, hyp: dict) -> AnchorFreeGains:
        """The box / cls / dfl gains and assigner settings of a hyp dict."""
        fields = {k: float(hyp[k]) for k in ("box", "cls", "dfl", "tal_alpha", "tal_beta") if k in hyp}
        gains = cls(**{k.removeprefix("tal_"): v for k, v in fields.items()})
        if "tal_topk" in hyp:
            gains.topk = int(hyp["tal_topk"])
        return gains


def padded_targets(targets: torch.Tensor, batch_size: int, height: int, width: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 6) rows [image, class, cx, cy, w, h] (normalised) -> per image, padded to the most boxes of any image:
    classes (B, M, 1), boxes xyxy in pixels (B, M, 4), and a mask of the real rows (B, M, 1)."""
    device = targets.device
    if not len(targets):
        empty = torch.zeros((batch_size, 0, 1), device=device)
        return empty, torch.zeros((batch_size, 0, 4), device=device), empty.bool()
    image = targets[:, 0].long()
    counts = torch.bincount(image, minlength=batch_size)
    m = int(counts.max())
    start = torch.cumsum(counts, 0) - counts
    order = torch.argsort(image, stable=True)
    image, rows = image[order], targets[order]
    slot = torch.arange(len(rows), device=device) - start[image]
    classes = torch.zeros((batch_size, m, 1), device=device)
    boxes = torch.zeros((batch_size, m, 4), device=device)
    mask = torch.zeros((batch_size, m, 1), dtype=torch.bool, device=device)
    classes[image, slot, 0] = rows[:, 1].float()
    scale = torch.tensor([width, height], device=device, dtype=torch.float32)
    centre, size = rows[:, 2:4].float() * scale, rows[:, 4:6].float() * scale
    boxes[image, slot] = torch.cat((centre - size / 2, centre + size / 2), 1)
    mask[image, slot, 0] = True
    return classes, boxes, mask


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor, reg_max: int) -> torch.Tensor:
    """(n, 4, reg_max) bin logits and (n, 4) distances in bins -> (n, 1): the cross-entropy to the two bins around
    each distance, weighted by nearness, averaged over the four sides."""
    target = target.clamp(0, reg_max - 1 - 0.01)
    left = target.long()
    weight_left = left + 1 - target
    log_p = F.log_softmax(logits, dim=-1)
    loss = -(log_p.gather(-1, left.unsqueeze(-1)).squeeze(-1) * weight_left
             + log_p.gather(-1, (left + 1).unsqueeze(-1)).squeeze(-1) * (1 - weight_left))
    return loss.mean(-1, keepdim=True)


class AnchorFreeLoss:
    """Callable: (raw maps (B, 4 * reg_max + nc, H_i, W_i), targets (N, 6)) -> (total loss x batch size,
    [box, cls, dfl] detached), ultralytics' loss scale."""

    def __init__(self, nc: int, strides: list[float] | torch.Tensor, reg_max: int = 16,
                 gains: AnchorFreeGains = AnchorFreeGains()) -> None:
        self.nc, self.reg_max, self.gains = nc, reg_max, gains
        self.strides = torch.as_tensor(strides, dtype=torch.float32).cpu()
        self.assigner = TaskAlignedAssigner(nc, gains.topk, gains.alpha, gains.beta, self.strides.tolist())
        self._bce = nn.BCEWithLogitsLoss(reduction="none")

    def __call__(self, maps: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, device = maps[0].shape[0], maps[0].device
        x = torch.cat([m.float().reshape(b, 4 * self.reg_max + self.nc, -1) for m in maps], 2).transpose(1, 2)
        pred_dist, logits = x.split((4 * self.reg_max, self.nc), 2)  # (B, N, 4 * reg_max), (B, N, nc)
        points, stride_column = anchor_points(maps, self.strides)
        height, width = (int(s * float(self.strides[0])) for s in maps[0].shape[-2:])
        gt_classes, gt_boxes, gt_mask = padded_targets(targets.to(device), b, height, width)
        bins = torch.arange(self.reg_max, device=device, dtype=torch.float32)
        distances = pred_dist.view(b, -1, 4, self.reg_max).softmax(-1) @ bins  # grid units
        pred_boxes = distances_to_boxes(distances, points, xywh=False)
        assigned = self.assigner(logits.detach().sigmoid(), pred_boxes.detach() * stride_column, points * stride_column,
                                 gt_classes, gt_boxes, gt_mask)
        score_sum = assigned.scores.sum().clamp(min=1)
        loss_cls = self._bce(logits, assigned.scores).sum() / score_sum
        loss_box, loss_dfl = self._box_losses(pred_dist, pred_boxes, points, assigned.boxes / stride_column,
                                              assigned, score_sum)
        losses = torch.stack((loss_box * self.gains.box, loss_cls * self.gains.cls, loss_dfl * self.gains.dfl))
        return losses.sum() * b, losses.detach()

    def _box_losses(self, pred_dist: torch.Tensor, pred_boxes: torch.Tensor, points: torch.Tensor,
                    target_boxes: torch.Tensor, assigned, score_sum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CIoU and DFL over the foreground anchors, each weighted by its target score (grid units)."""
        fg = assigned.foreground.nonzero(as_tuple=True)
        weight = assigned.scores[fg].sum(-1, keepdim=True)
        iou = xyxy_complete_iou(pred_boxes[fg], target_boxes[fg]).unsqueeze(-1)
        loss_box = ((1.0 - iou) * weight).sum() / score_sum
        point = points.expand_as(target_boxes[..., :2])[fg]
        sides = torch.cat((point - target_boxes[fg][:, :2], target_boxes[fg][:, 2:] - point), -1)
        sides = sides.clamp(0, self.reg_max - 1 - 0.01)
        logits = pred_dist[fg].view(-1, 4, self.reg_max)
        loss_dfl = (distribution_focal_loss(logits, sides, self.reg_max) * weight).sum() / score_sum
        return loss_box, loss_dfl
