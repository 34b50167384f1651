"""Showing pictures in a window, where there is a display: detect.py --view-img and ``Detections.show``."""

from __future__ import annotations

import os

import cv2
import numpy as np

from utils.logging import LOGGER

_PROBED: dict[str, bool] = {}


def display_available() -> bool:
    """Whether a window can be shown: a display server, and an OpenCV built with its GUI (probed once)."""
    if "answer" not in _PROBED:
        _PROBED["answer"] = _probe()
    return _PROBED["answer"]


def _probe() -> bool:
    if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("yolov5-spd probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("yolov5-spd probe")
        return True
    except cv2.error:
        return False


def show_image(title: str, image: np.ndarray, wait_ms: int = 1) -> bool:
    """Show a BGR image in a window named ``title``; without a display one line says so (and nothing is shown).
    Returns whether a window was shown."""
    if not display_available():
        LOGGER.info(f"show: no display here (no DISPLAY, or OpenCV without its GUI); {title} not shown: save it "
                    f"with .save(path) instead")
        return False
    cv2.imshow(title, image)
    cv2.waitKey(wait_ms)
    return True
