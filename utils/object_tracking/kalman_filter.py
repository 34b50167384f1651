"""A constant-velocity Kalman filter over boxes, batched over tracks (numpy).

Two box forms: ``xyah`` (centre x, centre y, aspect w/h, height; ByteTrack's) and ``xywh`` (centre, width,
height; BoT-SORT's). The noise of every coordinate scales with the box's size, so small and large objects are
followed with the same relative uncertainty.
"""

from __future__ import annotations

import numpy as np

POSITION_NOISE = 1.0 / 20  # standard deviation per unit of box size, position
VELOCITY_NOISE = 1.0 / 160  # the same, velocity


class KalmanFilter:
    """State: the 4 box numbers and their velocities (8); measurements: the 4 box numbers."""

    def __init__(self, form: str = "xyah") -> None:
        if form not in ("xyah", "xywh"):
            raise ValueError(f"Kalman box form {form!r}: xyah or xywh")
        self.form = form
        self.motion = np.eye(8)
        self.motion[:4, 4:] = np.eye(4)  # one frame per step
        self.observe = np.eye(4, 8)

    def _scales(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 4) the size each coordinate's noise scales with."""
        h = boxes[:, 3]
        if self.form == "xyah":
            return np.stack([h, h, np.full_like(h, np.nan), h], 1)  # the aspect ratio's noise is fixed
        w = boxes[:, 2]
        return np.stack([w, h, w, h], 1)

    def _std(self, boxes: np.ndarray, weight: float, aspect: float) -> np.ndarray:
        std = weight * self._scales(boxes)
        if self.form == "xyah":
            std[:, 2] = aspect
        return std

    def initiate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks at ``boxes`` (n, 4), still: (means (n, 8), covariances (n, 8, 8))."""
        mean = np.concatenate([boxes, np.zeros_like(boxes)], 1)
        std = np.concatenate([self._std(boxes, 2 * POSITION_NOISE, 1e-2),
                              self._std(boxes, 10 * VELOCITY_NOISE, 1e-5)], 1)
        return mean, np.stack([np.diag(s * s) for s in std])

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead, for every track."""
        if not len(mean):
            return mean, covariance
        std = np.concatenate([self._std(mean[:, :4], POSITION_NOISE, 1e-2),
                              self._std(mean[:, :4], VELOCITY_NOISE, 1e-5)], 1)
        noise = np.stack([np.diag(s * s) for s in std])
        mean = mean @ self.motion.T
        covariance = self.motion @ covariance @ self.motion.T + noise
        return mean, covariance

    def update(self, mean: np.ndarray, covariance: np.ndarray,
               boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct every track with its measured box (n, 4)."""
        std = self._std(mean[:, :4], POSITION_NOISE, 1e-1)
        innovation_cov = self.observe @ covariance @ self.observe.T + np.stack([np.diag(s * s) for s in std])
        gain = covariance @ self.observe.T @ np.linalg.inv(innovation_cov)
        residual = boxes - mean @ self.observe.T
        mean = mean + np.einsum("nij,nj->ni", gain, residual)
        covariance = covariance - gain @ innovation_cov @ gain.transpose(0, 2, 1)
        return mean, covariance


def to_form(xyxy: np.ndarray, form: str) -> np.ndarray:
    """(n, 4) corner boxes as the filter's form."""
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    cx, cy = xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2
    third = w / np.maximum(h, 1e-9) if form == "xyah" else w
    return np.stack([cx, cy, third, h], 1)


def from_form(boxes: np.ndarray, form: str) -> np.ndarray:
    """(n, 4) the filter's form back to corners."""
    h = boxes[:, 3]
    w = boxes[:, 2] * h if form == "xyah" else boxes[:, 2]
    return np.stack([boxes[:, 0] - w / 2, boxes[:, 1] - h / 2, boxes[:, 0] + w / 2, boxes[:, 1] + h / 2], 1)
