"""benchmarks/tracking.py: the known tracks of a moving window (boxes in window pixels, half-visible kept)."""

from __future__ import annotations

import numpy as np

from benchmarks.tracking import visible_truth, window_path


def test_window_path_stays_inside_and_moves():
    corners = window_path(50, (100, 40), step=6, shake=2, seed=0)
    assert corners.shape == (50, 2) and corners.min() >= 0 and (corners <= [100, 40]).all()
    assert np.abs(np.diff(corners[:, 0])).mean() > 4


def test_visible_truth_moves_boxes_and_drops_mostly_hidden_ones():
    labels = np.array([[0, 0.5, 0.5, 0.1, 0.1], [1, 0.05, 0.5, 0.1, 0.1]])  # the second is mostly left of x=20
    boxes, ids = visible_truth(labels, (200, 100), np.array([20, 10]), (150, 80))
    assert ids.tolist() == [1] and np.allclose(boxes[0], [70, 35, 90, 45])
