"""The detections of one image or frame, as Python callers, detect.py's files and the hub all see them.

    det.xyxy, det.xywh, det.xyxyn, det.xywhn    # (n, 4) boxes: pixels of the original image, or 0-1
    det.scores, det.classes, det.names_of()      # confidences, class ids, class names
    det.plot()                                   # an annotated BGR copy of the image
    det.save("out.jpg"); det.crop("crops/")      # the annotated image; one file per box, by class
    det.to_json(); det.to_records(); det.to_df() # the same field names everywhere (to_df needs pandas)

A record (a row of ``to_records``, of detect.py's predictions.json and of ``to_df``/``to_csv``) holds ``file``
(the image's name), ``source`` (its path, URL or "camera 0"), ``frame`` (0-based position in a video or stream,
else null), ``class_id``, ``class``, ``conf``, ``xyxy`` and ``xywhn``; the table forms spread the boxes into
``x1 y1 x2 y2`` and ``cx cy w h`` (normalised) columns.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from utils.boxes import xyxy_to_xywh
from utils.paths import safe_path_component
from utils.plots import draw_boxes

TABLE_COLUMNS = ["file", "source", "frame", "class_id", "class", "conf", "x1", "y1", "x2", "y2", "cx", "cy", "w", "h"]


@dataclass
class Detections:
    """Detections of one image, in its original pixels."""

    boxes: np.ndarray  # (n, 4) x1 y1 x2 y2
    scores: np.ndarray  # (n,)
    classes: np.ndarray  # (n,) int
    names: list[str]
    image_shape: tuple[int, int]  # (h, w)
    source: str = ""
    frame: int | None = None  # position in a video or stream
    image: np.ndarray | None = None  # the BGR image detected on (kept for plot/save/crop)

    def __len__(self) -> int:
        return len(self.boxes)

    def __repr__(self) -> str:
        where = f"{self.source}" + (f" frame {self.frame}" if self.frame is not None else "")
        return f"Detections({where or 'image'} {self.image_shape[1]}x{self.image_shape[0]}: {self.summary()})"

    @property
    def xyxy(self) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 in pixels of the original image."""
        return self.boxes

    @property
    def xywh(self) -> np.ndarray:
        """(n, 4) centre x, centre y, width, height in pixels."""
        return xyxy_to_xywh(self.boxes.astype(np.float32)).reshape(-1, 4)

    @property
    def xyxyn(self) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 as fractions of the image's width and height."""
        h, w = self.image_shape
        return (self.boxes / np.array([w, h, w, h], dtype=np.float32)).reshape(-1, 4)

    @property
    def xywhn(self) -> np.ndarray:
        """(n, 4) centre x, centre y, width, height as fractions of the image."""
        h, w = self.image_shape
        return (self.xywh / np.array([w, h, w, h], dtype=np.float32)).reshape(-1, 4)

    def names_of(self) -> list[str]:
        """The class name of every box."""
        return [self.names[int(c)] for c in self.classes]

    def summary(self) -> str:
        """'2 person, 1 bus' (or 'no detections')."""
        if not len(self):
            return "no detections"
        names, counts = np.unique(self.names_of(), return_counts=True)
        return ", ".join(f"{n} {name}" for name, n in zip(names, counts))

    @property
    def file(self) -> str:
        """The image's file name (a URL's without its query), or an empty string."""
        return Path(self.source.split("?")[0]).name if self.source else ""

    # ------------------------------------------------------------------------------------------------ pictures
    def _require_image(self) -> np.ndarray:
        if self.image is None:
            raise ValueError(f"{self.source or 'these detections'}: the image was not kept (video frames in a "
                             f"list are returned without theirs; iterate with stream=True to plot each frame)")
        return self.image

    def plot(self, thickness: int = 2, hide_labels: bool = False, hide_conf: bool = False) -> np.ndarray:
        """An annotated BGR copy of the image."""
        return draw_boxes(self._require_image().copy(), self.boxes, self.classes, self.names, self.scores,
                          thickness=thickness, hide_labels=hide_labels, hide_conf=hide_conf)

    def save(self, path: str | Path, **style) -> Path:
        """Write the annotated image to ``path`` (its suffix picks the format)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            written = cv2.imwrite(str(path), self.plot(**style))
        except cv2.error:
            written = False
        if not written:
            raise ValueError(f"{path}: could not write an image there (suffix {path.suffix!r})")
        return path

    def crop(self, folder: str | Path, stem: str | None = None) -> list[Path]:
        """One JPEG per box, in ``folder/<class name>/<stem>_<k>.jpg``; returns the paths written."""
        image = self._require_image()
        stem = stem or (Path(self.file).stem or "image") + (f"_{self.frame}" if self.frame is not None else "")
        written = []
        for k, (box, cls) in enumerate(zip(self.boxes.round().astype(int), self.classes)):
            x1, y1, x2, y2 = box
            if x2 <= x1 or y2 <= y1:
                continue
            out = Path(folder) / safe_path_component(self.names[int(cls)])
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{stem}_{k}.jpg"
            cv2.imwrite(str(path), image[max(y1, 0):y2, max(x1, 0):x2])
            written.append(path)
        return written

    # ------------------------------------------------------------------------------------------------ tables
    def to_records(self) -> list[dict]:
        """One dict per box (the field names of the module docstring)."""
        return [{"file": self.file, "source": self.source, "frame": self.frame, "class_id": int(c),
                 "class": self.names[int(c)], "conf": round(float(s), 5),
                 "xyxy": [round(float(v), 2) for v in b], "xywhn": [round(float(v), 6) for v in n]}
                for b, s, c, n in zip(self.boxes, self.scores, self.classes, self.xywhn)]

    def to_list(self) -> list[dict]:
        """The records (the name earlier releases used)."""
        return self.to_records()

    def to_json(self, indent: int | None = None) -> str:
        """The records as a JSON string."""
        return json.dumps(self.to_records(), indent=indent)

    def to_rows(self) -> list[dict]:
        """Flat rows with the columns of TABLE_COLUMNS."""
        rows = []
        for record in self.to_records():
            box, norm = record.pop("xyxy"), record.pop("xywhn")
            rows.append({**record, **dict(zip(("x1", "y1", "x2", "y2"), box)),
                         **dict(zip(("cx", "cy", "w", "h"), norm))})
        return rows

    def to_csv(self, header: bool = True) -> str:
        """The table rows as CSV text (header optional)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, TABLE_COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(self.to_rows())
        return buffer.getvalue()

    def to_df(self):
        """A pandas DataFrame of the rows (pandas is optional: without it, use to_csv or to_rows)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_df needs pandas (pip install pandas); to_csv() and to_rows() give the same "
                              "table without it") from None
        return pd.DataFrame(self.to_rows(), columns=TABLE_COLUMNS)
