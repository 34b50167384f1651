"""Camera-motion compensation for BoT-SORT: the frame-to-frame similarity transform of the background,
estimated from sparse optical flow (OpenCV), applied to the tracks' predicted states."""

from __future__ import annotations

import cv2
import numpy as np

IDENTITY = np.eye(2, 3)


class CameraMotion:
    """Tracks corner features from frame to frame and fits a rotation + scale + shift to them (RANSAC)."""

    def __init__(self, downscale: int = 2) -> None:
        self.downscale = downscale
        self.previous: np.ndarray | None = None
        self.points: np.ndarray | None = None

    def _gray(self, image: np.ndarray) -> np.ndarray:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.downscale > 1:
            h, w = gray.shape
            gray = cv2.resize(gray, (w // self.downscale, h // self.downscale))
        return gray

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """The 2 x 3 transform taking the previous frame's pixels to this one's (identity on the first frame,
        after a cut to another size, or where too few features follow)."""
        gray = self._gray(image)
        transform = IDENTITY.copy()
        previous, points = self.previous, self.points
        if previous is not None and previous.shape == gray.shape and points is not None and len(points) >= 4:
            moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, points, None)
            kept = status.reshape(-1) == 1
            if kept.sum() >= 4:
                fitted, _ = cv2.estimateAffinePartial2D(points[kept], moved[kept], method=cv2.RANSAC)
                if fitted is not None:
                    transform = fitted
                    transform[:, 2] *= self.downscale
        self.previous = gray
        self.points = cv2.goodFeaturesToTrack(gray, maxCorners=1000, qualityLevel=0.01, minDistance=1,
                                              blockSize=3, useHarrisDetector=False, k=0.04)
        return transform


def apply_motion(mean: np.ndarray, covariance: np.ndarray,
                 transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move the tracks' Kalman states (n, 8) and covariances (n, 8, 8) by the camera's 2 x 3 transform."""
    if not len(mean) or np.array_equal(transform, IDENTITY):
        return mean, covariance
    rotation = np.kron(np.eye(4), transform[:, :2])
    mean = mean @ rotation.T
    mean[:, :2] += transform[:, 2]
    return mean, rotation @ covariance @ rotation.T
