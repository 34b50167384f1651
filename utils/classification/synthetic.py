"""The embedded default classification set: one shape or digit per 32x32 image, detail made scarce.

Ten classes (four shapes and six digits) drawn on textured backgrounds at random size, position and colour, then
blurred or down-scaled to 12-16 px and back, so that fine detail is lost as in the paper's low-resolution
setting. Deterministic by seed, written as an ImageFolder (train/<class>/*.png, val/<class>/*.png), no download.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from utils.data.synthetic import _background, _draw

CLASSES = ["circle", "square", "triangle", "cross", "two", "seven", "three", "five", "eight", "zero"]
_DIGITS = {6: "3", 7: "5", 8: "8", 9: "0"}
VERSION = 2  # bump when the drawing changes: existing sets are regenerated


def _draw_class(image: np.ndarray, cls: int, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    size = float(rng.uniform(0.35, 0.7) * w)
    cx, cy = (float(rng.uniform(size / 2, d - size / 2)) for d in (w, h))
    # a colour that stands out from the background around it (the shape must be visible, only not sharp)
    x0, y0, half = int(cx), int(cy), max(int(size / 2), 1)
    around = image[max(y0 - half, 0):y0 + half, max(x0 - half, 0):x0 + half].reshape(-1, 3).mean(0)
    colour = tuple(int(255 - c + rng.integers(-30, 31)) % 256 if abs(255 - 2 * c) > 60 else int((c + 128) % 256)
                   for c in around)
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
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 1.6)))
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.3:  # lose detail: down to 12-16 px and back
        low = int(rng.integers(12, 17))
        image = cv2.resize(cv2.resize(image, (low, low), interpolation=cv2.INTER_AREA), (size, size),
                           interpolation=cv2.INTER_LINEAR)
    return image


def generate_classification_set(root: str | Path, n_train: int = 300, n_val: int = 60, seed: int = 0,
                                size: int = 32) -> Path:
    """Write ``n_train`` / ``n_val`` images per class under ``root`` (skipped when already complete)."""
    root = Path(root)
    marker = root / f".complete-v{VERSION}-{n_train}-{n_val}-{seed}-{size}"
    if marker.is_file():
        return root
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for cls, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("[0-9][0-9][0-9][0-9][0-9].png"):  # an earlier generation of this set
                old.unlink()
            for k in range(count):
                cv2.imwrite(str(folder / f"{k:05d}.png"), make_sample(rng, cls, size))
    marker.write_text("ok\n")
    return root
