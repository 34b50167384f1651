"""What a label reader returns for one image, and where annotation files lie beside images (shared by the
VOC and VisDrone readers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_FOLDERS = ("JPEGImages", "images")


@dataclass
class LabelRead:
    """What a label reader found for one image: YOLO rows, or why the image cannot be used."""

    labels: np.ndarray | None  # (n, 5) cls cx cy w h normalised; None: the image is skipped
    kind: str = ""  # problem kind when labels is None
    message: str = ""
    notes: list[str] = field(default_factory=list)  # kept, but worth a line (clipped boxes, difficult objects)
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # normalised xyxy regions


def failed(message: str) -> LabelRead:
    """The result of a label file that could not be used, with the reason."""
    return LabelRead(None, "bad label", message)


def annotation_path(image: Path, folder: str, suffix: str) -> Path:
    """The annotation beside an image: the last image folder (JPEGImages or images) becomes ``folder`` (or its
    lower-case form), keeping any sub-folders (``images/train/x.jpg`` -> ``Annotations/train/x.xml``), else
    directly in ``folder``; the first that exists, else the first candidate (reported as missing)."""
    parts = list(image.parts)
    candidates = []
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in IMAGE_FOLDERS:
            base, rest = Path(*parts[:i]), Path(*parts[i + 1:]).with_suffix(suffix)
            for name in dict.fromkeys((folder, folder.lower())):
                candidates += [base / name / rest, base / name / rest.name]
            break
    else:
        candidates = [image.parent.parent / folder / image.with_suffix(suffix).name]
    return next((c for c in candidates if c.is_file()), candidates[0])
