"""The embedded default dataset: small shapes and digits on textured backgrounds, made with OpenCV.

Deterministic by seed, no download, no extra dependency. Objects are 4-48 px; some images are blurred or
down-scaled and scaled back up (low resolution), which is where space-to-depth is meant to help.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

NAMES = ["circle", "square", "triangle", "cross", "two", "seven"]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour noise plus a few lines and blobs: texture without objects."""
    coarse = rng.integers(40, 215, (max(h // 32, 2), max(w // 32, 2), 3)).astype(np.uint8)
    image = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 12, (h, w, 3))
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 8))):
        p1 = tuple(int(v) for v in rng.integers(0, (w, h)))
        p2 = tuple(int(v) for v in rng.integers(0, (w, h)))
        cv2.line(image, p1, p2, tuple(int(c) for c in rng.integers(0, 255, 3)), int(rng.integers(1, 3)))
    return image


def _draw(image: np.ndarray, cls: int, cx: float, cy: float, size: float, colour: tuple, rng) -> tuple:
    """Draw one object; returns its tight box (x1, y1, x2, y2)."""
    r = size / 2
    if cls == 0:
        cv2.circle(image, (round(cx), round(cy)), max(round(r), 1), colour, -1, cv2.LINE_AA)
        return cx - r, cy - r, cx + r, cy + r
    if cls == 1:
        cv2.rectangle(image, (round(cx - r), round(cy - r)), (round(cx + r), round(cy + r)), colour, -1)
        return cx - r, cy - r, cx + r, cy + r
    if cls == 2:
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], dtype=np.int32)
        cv2.fillPoly(image, [pts], colour, cv2.LINE_AA)
        return cx - r, cy - r, cx + r, cy + r
    if cls == 3:
        t = max(round(size / 5), 1)
        cv2.line(image, (round(cx - r), round(cy - r)), (round(cx + r), round(cy + r)), colour, t)
        cv2.line(image, (round(cx - r), round(cy + r)), (round(cx + r), round(cy - r)), colour, t)
        return cx - r, cy - r, cx + r, cy + r
    text = "2" if cls == 4 else "7"
    scale = size / 22.0
    thickness = max(round(size / 10), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = round(cx - tw / 2), round(cy + th / 2)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return x, y - th, x + tw, y


def make_image(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One image and its YOLO labels (n, 5)."""
    image = _background(rng, h, w)
    labels, taken = [], []
    for _ in range(int(rng.integers(3, 13))):
        size = float(np.exp(rng.uniform(math.log(4), math.log(48))))
        cx, cy = rng.uniform(size, w - size), rng.uniform(size, h - size)
        if any(abs(cx - x) < (size + s) / 2 + 2 and abs(cy - y) < (size + s) / 2 + 2 for x, y, s in taken):
            continue
        taken.append((cx, cy, size))
        cls = int(rng.integers(0, len(NAMES)))
        base = image[int(cy), int(cx)].astype(int)
        colour = tuple(int(c) for c in (base + rng.choice([-1, 1], 3) * rng.integers(70, 140, 3)) % 256)
        x1, y1, x2, y2 = _draw(image, cls, cx, cy, size, colour, rng)
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            labels.append([cls, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
    degrade = rng.random()
    if degrade < 0.3:  # low resolution: down-scale and back up
        f = rng.uniform(0.4, 0.7)
        small = cv2.resize(image, (max(int(w * f), 1), max(int(h * f), 1)), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif degrade < 0.5:
        image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.5, 1.2))
    return image, np.array(labels, dtype=np.float64).reshape(-1, 5)


def generate_dataset(root: str | Path, n_train: int = 240, n_val: int = 60, seed: int = 0) -> Path:
    """Write images/{train,val} and labels/{train,val} under ``root`` (skipped when already complete)."""
    root = Path(root)
    marker = root / f".complete-{n_train}-{n_val}-{seed}"
    if marker.is_file():
        return root
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = [(320, 320), (256, 384), (384, 256)][int(rng.integers(0, 3))]
            image, labels = make_image(rng, h, w)
            stem = f"{split}_{i:05d}"
            cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            rows = "".join(f"{int(c)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}\n" for c, x, y, bw, bh in labels)
            tmp = root / "labels" / split / f".{stem}.txt.{os.getpid()}"
            tmp.write_text(rows)
            os.replace(tmp, root / "labels" / split / f"{stem}.txt")
    marker.touch()
    return root
