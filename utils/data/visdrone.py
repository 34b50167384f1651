"""VisDrone-DET labels, read where they lie: ``…/images/x.jpg`` is labelled by ``…/annotations/x.txt``, one
object per line: ``left,top,width,height,score,category,truncation,occlusion`` in pixels.

Categories 1-10 (pedestrian … motor) are classes 0-9. Category 0 ("ignored region") and 11 ("others") are
not ground truth; they become *ignored regions*: the dataset paints them with the letterbox grey (114) in
training and validation images, as common VisDrone pipelines do, so the model is neither taught that what is
inside them is background nor scored for a detection there. A ground-truth row with score 0 (the
annotators' "ignore this box") is treated the same way. A labelled box at least half inside one ignored region
is dropped with a note: painted grey, it could be neither learnt nor found.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from utils.data.label_files import LabelRead, annotation_path, failed

VISDRONE_NAMES = ["pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle", "awning-tricycle", "bus",
                  "motor"]
IGNORED_CATEGORIES = {0, 11}
OVERHANG_PIXELS = 2.0


def visdrone_txt_path(image: Path) -> Path:
    """Where VisDrone keeps the annotation of ``image`` (annotations/<stem>.txt)."""
    return annotation_path(image, "annotations", ".txt")


def read_visdrone_labels(image: Path, shape_hw: tuple[int, int], nc: int) -> LabelRead:
    """One image's annotation file as YOLO rows plus its ignored regions (normalised xyxy)."""
    path = visdrone_txt_path(image)
    if not path.is_file():
        return failed(f"{path}: annotation file missing for {image.name}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return failed(f"{path}: cannot read ({getattr(exc, 'strerror', None) or 'not UTF-8 text'})")
    h, w = shape_hw
    rows, ignore, clipped = [], [], 0
    for line_no, line in enumerate(text.splitlines(), 1):
        fields = [f for f in line.replace(" ", "").split(",") if f != ""]
        if not fields:
            continue
        where = f"{path}:{line_no}"
        if len(fields) < 6:
            return failed(f"{where}: expected 8 comma-separated numbers, got {len(fields)}")
        try:
            left, top, bw, bh, score, category = (float(v) for v in fields[:6])
        except ValueError:
            return failed(f"{where}: non-numeric value in {line.strip()!r}")
        if not all(math.isfinite(v) for v in (left, top, bw, bh, score, category)):
            return failed(f"{where}: NaN or infinite value in {line.strip()!r}")
        if score not in (0, 1):  # ground truth marks each box considered (1) or ignored (0); a detector's output
            return failed(f"{where}: score {fields[4]}: VisDrone ground truth has 0 (ignored) or 1 (considered); "
                          f"is this a results file rather than annotations?")
        if category != int(category) or not 0 <= category <= 11:
            return failed(f"{where}: category {fields[5]} outside 0..11")
        if bw <= 0 or bh <= 0:
            return failed(f"{where}: box width and height must be > 0")
        x1, y1, x2, y2 = left, top, left + bw, top + bh
        if x1 < -OVERHANG_PIXELS or y1 < -OVERHANG_PIXELS or x2 > w + OVERHANG_PIXELS or y2 > h + OVERHANG_PIXELS:
            return failed(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) outside the {w}x{h} image")
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
        clipped += (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
        if int(category) in IGNORED_CATEGORIES or score == 0:
            ignore.append([cx1 / w, cy1 / h, cx2 / w, cy2 / h])
            continue
        cls = int(category) - 1
        if cls >= nc:
            return failed(f"{where}: category {int(category)} but the dataset YAML names {nc} classes")
        rows.append([cls, (cx1 + cx2) / 2 / w, (cy1 + cy2) / 2 / h, (cx2 - cx1) / w, (cy2 - cy1) / h])
    rows_array = np.array(rows, dtype=np.float32).reshape(-1, 5)
    ignore_array = np.array(ignore, dtype=np.float32).reshape(-1, 4)
    hidden = _hidden_by_ignored(rows_array, ignore_array)
    notes = [f"{path}: {clipped} boxes overhanging the image by up to {OVERHANG_PIXELS:g} px clipped"] * bool(clipped)
    if hidden.any():
        notes.append(f"{path}: {int(hidden.sum())} boxes at least half inside an ignored region dropped (the region "
                     f"is painted grey: nothing of them would be seen)")
    return LabelRead(rows_array[~hidden], notes=notes, ignore=ignore_array)


def _hidden_by_ignored(rows: np.ndarray, ignore: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Which YOLO rows have at least ``share`` of their area inside one ignored region (normalised xyxy)."""
    if not len(rows) or not len(ignore):
        return np.zeros(len(rows), dtype=bool)
    boxes = np.concatenate((rows[:, 1:3] - rows[:, 3:5] / 2, rows[:, 1:3] + rows[:, 3:5] / 2), 1)[:, None]
    low, high = np.maximum(boxes[..., :2], ignore[None, :, :2]), np.minimum(boxes[..., 2:], ignore[None, :, 2:])
    inside = np.clip(high - low, 0, None).prod(-1)  # (boxes, regions)
    area = (rows[:, 3] * rows[:, 4])[:, None]
    return (inside >= share * area).any(1)
