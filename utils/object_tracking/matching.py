"""Assigning detections to tracks: IoU costs and the optimal assignment under a cost limit (scipy)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of corner boxes ``a`` (n, 4) and ``b`` (m, 4)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def assign(cost: np.ndarray, limit: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """The pairs (row, column) of least total cost whose cost is at most ``limit``, and the rows and
    columns left without a pair."""
    rows, columns = cost.shape
    if not rows or not columns:
        return [], list(range(rows)), list(range(columns))
    picked_rows, picked_columns = linear_sum_assignment(np.where(cost > limit, limit + 1.0, cost))
    pairs = [(r, c) for r, c in zip(picked_rows, picked_columns) if cost[r, c] <= limit]
    matched_rows, matched_columns = {r for r, _ in pairs}, {c for _, c in pairs}
    return (pairs, [r for r in range(rows) if r not in matched_rows],
            [c for c in range(columns) if c not in matched_columns])
