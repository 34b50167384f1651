"""The detections of one image or frame, as Python callers, detect.py's files and the hub all see them.

    det.xyxy, det.xywh, det.xyxyn, det.xywhn    # (n, 4) numpy boxes: pixels of the original image, or 0-1
    det.scores, det.classes, det.names_of()      # confidences, class ids, class names
    det.boxes.xyxy, det.boxes.conf, det.boxes.cls, det.boxes.id   # the same as tensors (ultralytics' Boxes)
    det.plot(); det.show()                       # an annotated BGR copy of the image; a window when there is one
    det.save("out.jpg"); det.crop("crops/")      # the annotated image; one file per box, by class
    det.save_txt("out.txt"); det.save_crop("crops/")   # YOLO label rows; ultralytics' name for crop
    det.to_json(); det.to_records(); det.to_df() # the same field names everywhere (to_df needs pandas)

Code written for ultralytics' ``Results`` also finds ``orig_img``, ``orig_shape``, ``path``, ``names`` and
``verbose()`` here. With a tracker (``detect.py --track``, ``YOLO.track``) every box also carries its track id.

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
import torch

from utils.boxes import xyxy_to_xywh, yolo_label_rows
from utils.paths import safe_path_component
from utils.plots import BoxStyle, draw_boxes

TABLE_COLUMNS = ["file", "source", "frame", "class_id", "class", "conf", "x1", "y1", "x2", "y2", "cx", "cy", "w", "h"]
TRACK_COLUMN = "track_id"  # added after "conf" when the boxes carry track ids


class Boxes:
    """The boxes of one image as tensors, read as ultralytics' ``Boxes``: ``xyxy``, ``xywh``, ``xyxyn``,
    ``xywhn`` (n, 4), ``conf``, ``cls`` and ``id`` (n,) (``id`` None without a tracker), ``data`` the (n, 6)
    or (n, 7) rows ``x1 y1 x2 y2 [id] conf cls``. Indexing and iterating give Boxes of the chosen rows."""

    def __init__(self, data: torch.Tensor, orig_shape: tuple[int, int]) -> None:
        self.data = data
        self.orig_shape = tuple(orig_shape)
        self.is_track = data.shape[1] == 7

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index) -> Boxes:
        rows = self.data[index]
        return Boxes(rows.reshape(-1, self.data.shape[1]), self.orig_shape)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Boxes({len(self)} boxes{', tracked' if self.is_track else ''}, image {self.orig_shape})"

    @property
    def shape(self) -> torch.Size:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def xyxy(self) -> torch.Tensor:
        """(n, 4) x1, y1, x2, y2 in pixels of the original image."""
        return self.data[:, :4]

    @property
    def conf(self) -> torch.Tensor:
        """(n,) confidences."""
        return self.data[:, -2]

    @property
    def cls(self) -> torch.Tensor:
        """(n,) class ids (as floats, like ultralytics)."""
        return self.data[:, -1]

    @property
    def id(self) -> torch.Tensor | None:
        """(n,) track ids, or None when no tracker ran."""
        return self.data[:, 4] if self.is_track else None

    @property
    def xywh(self) -> torch.Tensor:
        """(n, 4) centre x, centre y, width, height in pixels."""
        return torch.from_numpy(xyxy_to_xywh(self.xyxy.numpy().astype(np.float32)).reshape(-1, 4))

    @property
    def xyxyn(self) -> torch.Tensor:
        """(n, 4) x1, y1, x2, y2 as fractions of the image's width and height."""
        h, w = self.orig_shape
        return self.xyxy / torch.tensor([w, h, w, h], dtype=self.data.dtype)

    @property
    def xywhn(self) -> torch.Tensor:
        """(n, 4) centre x, centre y, width, height as fractions of the image."""
        h, w = self.orig_shape
        return self.xywh / torch.tensor([w, h, w, h], dtype=torch.float32)

    def cpu(self) -> Boxes:
        """These boxes (they are always on the CPU)."""
        return self

    def numpy(self) -> np.ndarray:
        """``data`` as a numpy array."""
        return self.data.numpy()


@dataclass
class Detections:
    """Detections of one image, in its original pixels."""

    box_array: np.ndarray  # (n, 4) x1 y1 x2 y2
    scores: np.ndarray  # (n,)
    classes: np.ndarray  # (n,) int
    names: list[str]
    image_shape: tuple[int, int]  # (h, w)
    source: str = ""
    frame: int | None = None  # position in a video or stream
    image: np.ndarray | None = None  # the BGR image detected on (kept for plot/save/crop)
    track_ids: np.ndarray | None = None  # (n,) int, when a tracker ran

    def __len__(self) -> int:
        return len(self.box_array)

    def __repr__(self) -> str:
        where = f"{self.source}" + (f" frame {self.frame}" if self.frame is not None else "")
        return f"Detections({where or 'image'} {self.image_shape[1]}x{self.image_shape[0]}: {self.summary()})"

    @property
    def boxes(self) -> Boxes:
        """The boxes as tensors, read as ultralytics' ``Results.boxes``."""
        columns = [torch.as_tensor(self.box_array, dtype=torch.float32).reshape(-1, 4)]
        if self.track_ids is not None:
            columns.append(torch.as_tensor(self.track_ids, dtype=torch.float32).reshape(-1, 1))
        columns += [torch.as_tensor(self.scores, dtype=torch.float32).reshape(-1, 1),
                    torch.as_tensor(self.classes, dtype=torch.float32).reshape(-1, 1)]
        return Boxes(torch.cat(columns, 1), self.image_shape)

    @property
    def orig_img(self) -> np.ndarray | None:
        """The BGR image detected on (ultralytics' name), None when it was not kept."""
        return self.image

    @property
    def orig_shape(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return self.image_shape

    @property
    def path(self) -> str:
        """Where the image came from (a path, URL or "camera 0"); ultralytics' name for ``source``."""
        return self.source

    @property
    def xyxy(self) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 in pixels of the original image."""
        return self.box_array

    @property
    def xywh(self) -> np.ndarray:
        """(n, 4) centre x, centre y, width, height in pixels."""
        return xyxy_to_xywh(self.box_array.astype(np.float32)).reshape(-1, 4)

    @property
    def xyxyn(self) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 as fractions of the image's width and height."""
        h, w = self.image_shape
        return (self.box_array / np.array([w, h, w, h], dtype=np.float32)).reshape(-1, 4)

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

    def verbose(self) -> str:
        """The summary as ultralytics' ``Results.verbose`` words it: "1 bus, 2 person, " (empty without boxes)."""
        return "".join(f"{part}, " for part in self.summary().split(", ")) if len(self) else ""

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

    def plot(self, thickness: int = 2, hide_labels: bool = False, hide_conf: bool = False, *,
             line_width: int | None = None, labels: bool | None = None, conf: bool | None = None) -> np.ndarray:
        """An annotated BGR copy of the image. ``line_width``, ``labels`` and ``conf`` are ultralytics' names for
        ``thickness`` and the two tags (``labels=False`` hides the tags, ``conf=False`` the scores)."""
        thickness = thickness if line_width is None else line_width
        hide_labels = hide_labels if labels is None else not labels
        hide_conf = hide_conf if conf is None else not conf
        return draw_boxes(self._require_image().copy(), self.box_array, self.classes, self.names, self.scores,
                          BoxStyle(thickness, hide_labels, hide_conf), track_ids=self.track_ids)

    def show(self, **style) -> bool:
        """Show the annotated image in a window; where there is no display, one line says so and nothing is
        shown. Returns whether a window was shown."""
        from utils.detection.display import show_image

        return show_image(self.source or "detections", self.plot(**style))

    def save_txt(self, path: str | Path, save_conf: bool = False) -> Path:
        """Write the boxes as YOLO label rows (``class cx cy w h [conf]``, normalised) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = yolo_label_rows(self.classes, self.box_array, self.image_shape, self.scores if save_conf else None)
        path.write_text("\n".join(lines) + ("\n" if lines else ""))
        return path

    def save_crop(self, save_dir: str | Path, file_name: str | None = None) -> list[Path]:
        """ultralytics' name for :meth:`crop`: one JPEG per box in ``save_dir/<class>/``."""
        return self.crop(save_dir, Path(file_name).stem if file_name else None)

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
        for k, (box, cls) in enumerate(zip(self.box_array.round().astype(int), self.classes)):
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
        """One dict per box (the field names of the module docstring; ``track_id`` after ``conf`` when tracked)."""
        records = []
        for k, (b, s, c, n) in enumerate(zip(self.box_array, self.scores, self.classes, self.xywhn)):
            record = {"file": self.file, "source": self.source, "frame": self.frame, "class_id": int(c),
                      "class": self.names[int(c)], "conf": round(float(s), 5)}
            if self.track_ids is not None:
                record[TRACK_COLUMN] = int(self.track_ids[k])
            records.append({**record, "xyxy": [round(float(v), 2) for v in b],
                            "xywhn": [round(float(v), 6) for v in n]})
        return records

    def columns(self) -> list[str]:
        """The table columns of these detections (TABLE_COLUMNS, with ``track_id`` when tracked)."""
        if self.track_ids is None:
            return TABLE_COLUMNS
        at = TABLE_COLUMNS.index("conf") + 1
        return TABLE_COLUMNS[:at] + [TRACK_COLUMN] + TABLE_COLUMNS[at:]

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
        writer = csv.DictWriter(buffer, self.columns(), lineterminator="\n")
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
        return pd.DataFrame(self.to_rows(), columns=self.columns())
