"""YOLOv5 loss: anchor target assignment, CIoU box loss, BCE objectness and classification.

Inputs are explicit (anchors, strides, class count, gains): nothing is read off a model object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from utils.boxes import complete_iou, normalized_wasserstein

# Five cells may predict a target: its own and the two nearest neighbours along x and y.
_NEIGHBOUR_OFFSETS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32)
LEVEL_BALANCE = {3: [4.0, 1.0, 0.4], 4: [4.0, 1.0, 0.25, 0.06], 5: [4.0, 1.0, 0.25, 0.06, 0.02]}


@dataclass
class LossGains:
    """The YOLOv5 loss's gains and thresholds, from the hyp file."""
    box: float = 0.05
    obj: float = 1.0
    cls: float = 0.5
    anchor_t: float = 4.0
    cls_pw: float = 1.0
    obj_pw: float = 1.0
    fl_gamma: float = 0.0
    label_smoothing: float = 0.0
    nwd: float = 0.0  # share of the box loss taken by 1 - NWD (the rest is 1 - CIoU); 0: CIoU only
    nwd_c: float = 12.8  # NWD's constant in input pixels (the NWD paper's value for AI-TOD)

    @classmethod
    def from_hyp(cls, hyp: dict, label_smoothing: float = 0.0) -> LossGains:
        """The gains of a hyp dict, with label smoothing."""
        fields = {k: float(hyp[k]) for k in cls.__dataclass_fields__ if k in hyp}
        fields["label_smoothing"] = label_smoothing or fields.get("label_smoothing", 0.0)
        return cls(**fields)


class FocalLoss(nn.Module):
    """Focal modulation of a BCE-with-logits loss (gamma 1.5, alpha 0.25 in the YOLOv5 recipe)."""

    def __init__(self, bce: nn.BCEWithLogitsLoss, gamma: float = 1.5, alpha: float = 0.25) -> None:
        super().__init__()
        self.bce, self.gamma, self.alpha = bce, gamma, alpha
        self.reduction = bce.reduction
        self.bce.reduction = "none"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.bce(logits, target)
        prob = torch.sigmoid(logits)
        p_t = target * prob + (1 - target) * (1 - prob)
        alpha = target * self.alpha + (1 - target) * (1 - self.alpha)
        loss = loss * alpha * (1.0 - p_t) ** self.gamma
        return loss.mean() if self.reduction == "mean" else loss.sum()


class _ObjectnessAndPositives(torch.autograd.Function):
    """``(p[..., 4], p[img, anchor, gj, gi])`` of a raw map ``p`` (B, na, H, W, 5 + nc) as one autograd node.

    Indexed separately, autograd would build two zero-filled gradients of the whole map, add them, and
    return them in the default layout; the model's maps are views of channels-last convolution outputs, so
    that layout costs two transposing copies more. Here the backward pass writes one gradient with ``p``'s own
    strides: the same values, a quarter of the memory traffic.
    """

    @staticmethod
    def forward(ctx, p: torch.Tensor, img: torch.Tensor, anchor_idx: torch.Tensor, gj: torch.Tensor,
                gi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(img, anchor_idx, gj, gi)
        ctx.shape_and_strides = p.shape, p.stride()
        return p[..., 4].clone(), p[img, anchor_idx, gj, gi]

    @staticmethod
    def backward(ctx, grad_obj: torch.Tensor | None, grad_positives: torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, ...]:
        img, anchor_idx, gj, gi = ctx.saved_tensors
        reference = grad_obj if grad_obj is not None else grad_positives
        shape, strides = ctx.shape_and_strides
        grad = torch.empty_strided(shape, strides, dtype=reference.dtype, device=reference.device).zero_()
        if grad_obj is not None:
            grad[..., 4] = grad_obj
        if grad_positives is not None and len(img):
            grad.index_put_((img, anchor_idx, gj, gi), grad_positives, accumulate=True)
        return grad, None, None, None, None


class YoloLoss:
    """Callable: (raw maps, targets (N, 6)) -> (total loss scaled by batch size, [box, obj, cls] detached).

    ``anchors`` are (levels, anchors, 2) in grid units of each level; gains are scaled by the number of
    levels, classes (nc / 80) and image size ((imgsz / 640)²) as in YOLOv5. With ``gains.nwd`` > 0 the box
    loss mixes in 1 - NWD, whose constant (pixels) is turned into each level's grid units by ``strides``.
    """

    def __init__(self, anchors: torch.Tensor, nc: int, gains: LossGains = LossGains(), imgsz: int = 640,
                 strides: torch.Tensor | list[float] | None = None) -> None:
        if gains.nwd > 0 and strides is None:
            raise ValueError("the NWD box loss needs the model's strides (its constant is in pixels)")
        self.nwd_constants = [gains.nwd_c / float(s) for s in strides] if strides is not None else None
        self.anchors = anchors.detach().clone()
        self.nl, self.na = anchors.shape[:2]
        self.nc = nc
        self.gains = gains
        scale = 3 / self.nl
        self.box_gain = gains.box * scale
        self.cls_gain = gains.cls * nc / 80 * scale
        self.obj_gain = gains.obj * (imgsz / 640) ** 2 * scale
        self.balance = LEVEL_BALANCE.get(self.nl, [1.0] * self.nl)
        self.positive = 1.0 - 0.5 * gains.label_smoothing
        self.negative = 0.5 * gains.label_smoothing
        # On the anchors' device from the start: a model already moved to a GPU hands over GPU anchors.
        self._bce_cls = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([gains.cls_pw], device=anchors.device))
        self._bce_obj = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([gains.obj_pw], device=anchors.device))
        if gains.fl_gamma > 0:
            self._bce_cls = FocalLoss(self._bce_cls, gains.fl_gamma)
            self._bce_obj = FocalLoss(self._bce_obj, gains.fl_gamma)

    def __call__(self, maps: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = maps[0].device
        if self.anchors.device != device:
            self.anchors = self.anchors.to(device)
            self._bce_cls.to(device)
            self._bce_obj.to(device)
        targets = targets.to(device)
        loss_box = torch.zeros((), device=device)
        loss_obj = torch.zeros((), device=device)
        loss_cls = torch.zeros((), device=device)
        for i, (p, (img, anchor_idx, gj, gi, tbox, anchor, tcls)) in enumerate(
                zip(maps, self.build_targets(maps, targets))):
            obj_target = torch.zeros(p.shape[:4], dtype=p.dtype, device=device)
            obj_logits, positives = _ObjectnessAndPositives.apply(p, img, anchor_idx, gj, gi)
            if len(img):
                pxy, pwh, _, pcls = positives.split((2, 2, 1, self.nc), 1)
                pxy = pxy.sigmoid() * 2 - 0.5
                pwh = (pwh.sigmoid() * 2) ** 2 * anchor
                pred_box = torch.cat((pxy, pwh), 1)
                ciou = complete_iou(pred_box, tbox)
                if self.gains.nwd > 0:
                    nwd = normalized_wasserstein(pred_box, tbox, self.nwd_constants[i])
                    loss_box = loss_box + (1.0 - self.gains.nwd) * (1.0 - ciou).mean() + \
                        self.gains.nwd * (1.0 - nwd).mean()
                else:
                    loss_box = loss_box + (1.0 - ciou).mean()
                iou = ciou.detach().clamp(0).to(obj_target.dtype)
                obj_target[img, anchor_idx, gj, gi] = iou
                if self.nc > 1:
                    cls_target = torch.full_like(pcls, self.negative)
                    cls_target[torch.arange(len(tcls), device=device), tcls] = self.positive
                    loss_cls = loss_cls + self._bce_cls(pcls, cls_target)
            loss_obj = loss_obj + self._bce_obj(obj_logits, obj_target) * self.balance[i]
        loss_box = loss_box * self.box_gain
        loss_obj = loss_obj * self.obj_gain
        loss_cls = loss_cls * self.cls_gain
        batch_size = maps[0].shape[0]
        return (loss_box + loss_obj + loss_cls) * batch_size, torch.stack((loss_box, loss_obj, loss_cls)).detach()

    @torch.no_grad()
    def build_targets(self, maps: list[torch.Tensor], targets: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Per level: (image, anchor, grid y, grid x, target box (offset xy, wh) in grid units, anchor wh,
        class). A target goes to every anchor whose width and height ratios are within ``anchor_t``, in its
        own cell and the two nearest neighbouring cells."""
        device = targets.device
        nt = targets.shape[0]
        anchor_ids = torch.arange(self.na, device=device, dtype=targets.dtype).view(self.na, 1).repeat(1, nt)
        # (na, nt, 7): image, class, x, y, w, h, anchor index
        expanded = torch.cat((targets.repeat(self.na, 1, 1), anchor_ids[..., None]), 2)
        offsets = _NEIGHBOUR_OFFSETS.to(device) * 0.5
        out = []
        for i, p in enumerate(maps):
            h, w = p.shape[2:4]
            anchors = self.anchors[i]
            scale = torch.tensor([1, 1, w, h, w, h, 1], device=device, dtype=targets.dtype)
            t = expanded * scale
            if nt:
                ratio = t[..., 4:6] / anchors[:, None]
                t = t[torch.max(ratio, 1 / ratio).max(2)[0] < self.gains.anchor_t]
                gxy = t[:, 2:4]
                gxy_inv = scale[[2, 3]] - gxy
                left, top = ((gxy % 1 < 0.5) & (gxy > 1)).T
                right, bottom = ((gxy_inv % 1 < 0.5) & (gxy_inv > 1)).T
                choose = torch.stack((torch.ones_like(left), left, top, right, bottom))
                t = t.repeat((5, 1, 1))[choose]
                shift = (torch.zeros_like(gxy)[None] + offsets[:, None])[choose]
            else:
                t = expanded[0]
                shift = torch.zeros((0, 2), device=device)
            img, cls = t[:, 0].long(), t[:, 1].long()
            gxy, gwh = t[:, 2:4], t[:, 4:6]
            gij = (gxy - shift).long()
            gi = gij[:, 0].clamp_(0, w - 1)
            gj = gij[:, 1].clamp_(0, h - 1)
            anchor_idx = t[:, 6].long()
            tbox = torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1)
            out.append((img, anchor_idx, gj, gi, tbox, anchors[anchor_idx], cls))
        return out
