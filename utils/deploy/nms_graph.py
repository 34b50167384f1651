"""An export with non-maximum suppression inside the graph (``export.py --nms``): the file returns final boxes.

Graph inputs: ``images`` (B, 3, H, W) float RGB in [0, 1], ``iou_threshold`` and ``score_threshold`` (float,
shape (1,)), so one file serves validation (0.6 / 0.001) and detection (0.45 / 0.25). Output ``detections``
(K, 7): ``batch_index, x1, y1, x2, y2, score, class`` in input pixels, every class of a box whose score
(objectness x class probability) passes the threshold — yolov5's multi-label NMS — kept apart by class, at most
``max_det`` per class and image (ONNX NonMaxSuppression's limit); the runtime keeps the best ``max_det`` per
image. A plain export plus :func:`utils.boxes.non_max_suppression` gives the same boxes.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from utils.boxes import xywh_to_xyxy


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression (centre-format boxes); the eager forward gives the same selection."""

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class, iou_threshold, score_threshold):  # noqa: ARG004
        selected = []
        for b in range(boxes.shape[0]):
            cls, index = (scores[b] > score_threshold).nonzero(as_tuple=True)
            xyxy = xywh_to_xyxy(boxes[b, index])
            keep = torchvision.ops.batched_nms(xyxy, scores[b, cls, index], cls, float(iou_threshold))
            per_class = torch.zeros(scores.shape[1], dtype=torch.long)
            rows = []
            for k in keep.tolist():
                c = int(cls[k])
                if per_class[c] < int(max_per_class):
                    per_class[c] += 1
                    rows.append((b, c, int(index[k])))
            selected += rows
        return torch.tensor(selected, dtype=torch.long).reshape(-1, 3)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        return g.op("NonMaxSuppression", boxes, scores, max_per_class, iou_threshold, score_threshold,
                    center_point_box_i=1)


class NmsGraph(nn.Module):
    """``model`` (decoded (B, N, 5 + nc) outputs) followed by multi-label, class-aware NMS."""

    def __init__(self, model: nn.Module, max_det: int = 300) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("max_per_class", torch.tensor([max_det], dtype=torch.long))

    def forward(self, images: torch.Tensor, iou_threshold: torch.Tensor,
                score_threshold: torch.Tensor) -> torch.Tensor:
        predictions = self.model(images)
        if isinstance(predictions, (tuple, list)):
            predictions = predictions[0]
        boxes = predictions[..., :4]
        scores = (predictions[..., 5:] * predictions[..., 4:5]).transpose(1, 2).contiguous()
        selected = _NonMaxSuppression.apply(boxes, scores, self.max_per_class, iou_threshold, score_threshold)
        batch, cls, index = selected[:, 0], selected[:, 1], selected[:, 2]
        n, nc = boxes.shape[1], scores.shape[1]
        chosen = boxes.reshape(-1, 4).index_select(0, batch * n + index)
        score = scores.reshape(-1).index_select(0, (batch * nc + cls) * n + index)
        half = chosen[:, 2:] / 2
        xyxy = torch.cat([chosen[:, :2] - half, chosen[:, :2] + half], 1)
        return torch.cat([batch[:, None].float(), xyxy, score[:, None], cls[:, None].float()], 1)


def split_detections(rows: torch.Tensor, batch_size: int, max_det: int,
                     classes: list[int] | None = None) -> list[torch.Tensor]:
    """The graph's (K, 7) rows -> per image an (n, 6) tensor (x1 y1 x2 y2 score class), best first, at most
    ``max_det``, only ``classes`` when given."""
    out = []
    for b in range(batch_size):
        det = rows[rows[:, 0] == b, 1:]
        if classes is not None:
            det = det[torch.isin(det[:, 5], torch.tensor(classes, dtype=det.dtype))]
        out.append(det[det[:, 4].argsort(descending=True)[:max_det]])
    return out
