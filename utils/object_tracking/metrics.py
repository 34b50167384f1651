"""Scoring tracks against ground truth: IDF1 (the share of boxes given the right identity, under the best
one-to-one pairing of true and predicted identities) and identity switches (a true object whose matched
predicted id changes from one matched frame to the next). A predicted box matches a true one at IoU >= 0.5."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from utils.object_tracking.matching import assign, box_iou

MATCH_IOU = 0.5

Frame = tuple[np.ndarray, np.ndarray]  # (n, 4) corner boxes, (n,) ids


def identity_scores(truth: list[Frame], predicted: list[Frame]) -> dict[str, float]:
    """IDF1, IDP, IDR, identity switches and the box counts over a sequence of frames."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} ground-truth frames but {len(predicted)} predicted ones")
    together: dict[tuple[int, int], int] = defaultdict(int)  # (true id, predicted id) -> frames matched
    true_count = predicted_count = switches = 0
    last_match: dict[int, int] = {}
    for (true_boxes, true_ids), (boxes, ids) in zip(truth, predicted):
        true_count, predicted_count = true_count + len(true_ids), predicted_count + len(ids)
        iou = box_iou(np.asarray(true_boxes, float).reshape(-1, 4), np.asarray(boxes, float).reshape(-1, 4))
        for t in range(len(true_ids)):
            for p in np.flatnonzero(iou[t] >= MATCH_IOU):
                together[(int(true_ids[t]), int(ids[p]))] += 1
        pairs, _, _ = assign(1 - iou, 1 - MATCH_IOU)  # this frame's matching, for the switches
        for t, p in pairs:
            true_id, predicted_id = int(true_ids[t]), int(ids[p])
            switches += true_id in last_match and last_match[true_id] != predicted_id
            last_match[true_id] = predicted_id
    true_ids = sorted({t for t, _ in together})
    predicted_ids = sorted({p for _, p in together})
    agreement = np.zeros((len(true_ids), len(predicted_ids)))
    for (t, p), frames in together.items():
        agreement[true_ids.index(t), predicted_ids.index(p)] = frames
    rows, columns = linear_sum_assignment(-agreement) if agreement.size else ([], [])
    correct = float(agreement[rows, columns].sum()) if agreement.size else 0.0
    return {"IDF1": 2 * correct / max(true_count + predicted_count, 1), "IDP": correct / max(predicted_count, 1),
            "IDR": correct / max(true_count, 1), "ID switches": switches, "true boxes": true_count,
            "predicted boxes": predicted_count}
