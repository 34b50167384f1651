"""The embedded default classification set: one shape or digit per 32x32 image, detail made scarce.

Ten classes (four shapes and six digits) drawn on textured backgrounds at random size, position and colour, then
blurred or down-scaled to 12-16 px and back, so that fine detail is lost as in the paper's low-resolution
setting. Deterministic by seed, written as an ImageFolder (train/<class>/*.png, val/<class>/*.png), no download.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from utils.synthetic import _background, _draw

CLASSES = ["circle", "square", "triangle", "cross", "two", "seven", "three", "five", "eight", "zero"]
_DIGITS = {6: "3", 7: "5", 8: "8", 9: "0"}


def _draw_class(image: np.ndarray, cls: int, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    size = float(rng.uniform(0.35, 0.7) * w)
    cx, cy = (float(rng.uniform(size / 2, d - size / 2)) for d in (w, h))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    if cls < 6:
        _draw(image, cls, cx, cy, size, colour, rng)
        return
    text, scale, thickness = _DIGITS[cls], size / 22.0, max(round(size / 10), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.putText(image, text, (round(cx - tw / 2), round(cy + th / 2)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                thickness, cv2.LINE_AA)


def make_sample(rng: np.random.Generator, cls: int, size: int = 32) -> np.ndarray:
    """One BGR image of class ``cls``, drawn at 2x and degraded to ``size``."""
    image = _background(rng, 2 * size, 2 * size)
    _draw_class(image, cls, rng)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 2.0)))
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:  # lose detail: down to 12-16 px and back
        low = int(rng.integers(12, 17))
        image = cv2.resize(cv2.resize(image, (low, low), interpolation=cv2.INTER_AREA), (size, size),
                           interpolation=cv2.INTER_LINEAR)
    return image


def generate_classification_set(root: str | Path, n_train: int = 300, n_val: int = 60, seed: int = 0,
                                size: int = 32) -> Path:
    """Write ``n_train`` / ``n_val`` images per class under ``root`` (skipped when already complete)."""
    root = Path(root)
    marker = root / f".complete-{n_train}-{n_val}-{seed}-{size}"
    if marker.is_file():
        return root
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for cls, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                cv2.imwrite(str(folder / f"{k:05d}.png"), make_sample(rng, cls, size))
    marker.write_text("ok\n")
    return root
