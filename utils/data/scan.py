"""The checking scan of a split: every image and label once, bad ones reported, the result cached as JSON
(never pickle, never inside the dataset folder)."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from utils.data.formats import (
    DatasetError,
    cache_dir,
    label_path_for,
    labels_from_coco_json,
    list_images,
    parse_label_text,
)
from utils.data.images import DEFAULT_MAX_PIXELS, check_image
from utils.data.label_files import LabelRead
from utils.data.visdrone import read_visdrone_labels, visdrone_txt_path
from utils.data.voc import read_voc_labels, voc_xml_path
from utils.logging import LOGGER

CACHE_VERSION = 3
LABEL_FORMATS = ("yolo", "voc", "visdrone")


# ---------------------------------------------------------------------------------------- checking
@dataclass
class ScanResult:
    """Usable images with their sizes and labels, and what was skipped and why."""

    images: list[str] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)  # (h, w) of the original image
    labels: list[np.ndarray] = field(default_factory=list)  # (n, 5): cls, cx, cy, w, h (normalised)
    ignore: list[np.ndarray] = field(default_factory=list)  # (k, 4) normalised xyxy regions not to learn or score
    sources: list[str] | None = None  # tiles (utils.data.tiles): the file each entry of ``images`` is cut from
    windows: list[tuple[int, int, int, int]] | None = None  # ... and its window (x0, y0, x1, y1), original pixels
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (file, kind, message)
    warnings: list[str] = field(default_factory=list)
    source: str = ""

    def counts(self) -> dict[str, int]:
        """Skipped images per reason."""
        out: dict[str, int] = {}
        for _, kind, _ in self.problems:
            out[kind] = out.get(kind, 0) + 1
        return out

    @property
    def n_boxes(self) -> int:
        """The number of labelled boxes kept."""
        return int(sum(len(x) for x in self.labels))


@dataclass(frozen=True)
class LabelSource:
    """Where an image's labels come from: YOLO txt beside it, a COCO JSON, VOC XML or VisDrone txt."""

    label_format: str = "yolo"
    names: tuple[str, ...] = ()
    difficult: str = "keep"  # VOC: keep or exclude objects marked difficult
    json_labels: dict[str, np.ndarray] | None = None

    def label_file(self, image: Path) -> Path:
        """Where the labels of ``image`` are read from."""
        if self.label_format == "voc":
            return voc_xml_path(image)
        if self.label_format == "visdrone":
            return visdrone_txt_path(image)
        return label_path_for(image)

    def read(self, image: Path, shape: tuple[int, int], nc: int) -> tuple[LabelRead, int]:
        """(what was read, duplicate rows removed)."""
        if self.label_format == "voc":
            return without_duplicates(read_voc_labels(image, shape, list(self.names), self.difficult))
        if self.label_format == "visdrone":
            return without_duplicates(read_visdrone_labels(image, shape, nc))
        if self.json_labels is not None:
            labels = self.json_labels.get(image.name)
            if labels is None:
                return LabelRead(None, "bad label", f"{image}: not in the annotations JSON"), 0
            return LabelRead(np.concatenate([labels[:, :1], np.clip(labels[:, 1:], 0, 1)], 1)), 0
        label_file = label_path_for(image)
        if not label_file.exists():
            return LabelRead(np.zeros((0, 5), np.float32)), 0  # a background image
        if not label_file.is_file():  # a folder, a FIFO (reading it would hang), a device
            return LabelRead(None, "bad label", f"{label_file}: not a regular file"), 0
        try:
            text = label_file.read_bytes().decode("utf-8-sig")  # a byte-order mark is allowed
        except UnicodeDecodeError:
            return LabelRead(None, "bad label", f"{label_file}: not UTF-8 text"), 0
        except OSError as exc:
            return LabelRead(None, "bad label", f"{label_file}: cannot read ({exc.strerror})"), 0
        labels, kind, message, duplicates = parse_label_text(text, nc, str(label_file))
        if labels is not None:
            return LabelRead(labels, notes=[message] if message else []), duplicates
        return LabelRead(labels, kind, message), duplicates


def without_duplicates(found: LabelRead) -> tuple[LabelRead, int]:
    """``found`` with exactly repeated rows (same class, same box) kept once, and how many were removed: the
    YOLO reader's rule, for every format."""
    if found.labels is None or len(found.labels) < 2:
        return found, 0
    _, first = np.unique(found.labels, axis=0, return_index=True)
    kept = found.labels[np.sort(first)]
    return replace(found, labels=kept), len(found.labels) - len(kept)


def _check_pair(image: Path, nc: int, source: LabelSource, max_pixels: int) -> tuple[Any, ...]:
    shape, kind, message = check_image(image, max_pixels)
    if shape is None:
        return None, LabelRead(None, kind, message), 0
    found, duplicates = source.read(image, shape, nc)
    return (shape if found.labels is not None else None), found, duplicates


def _fingerprint(files: list[Path], nc: int, source: LabelSource, max_pixels: int) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION} nc={nc} max_pixels={max_pixels} "
                            f"{source.label_format} {source.names} {source.difficult}".encode())
    for f in files:
        for p in (f, source.label_file(f)):
            try:
                st = p.stat()
                digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{p}\0missing\n".encode())
    return digest.hexdigest()


def scan_dataset(source: str | list[str], nc: int, workers: int = 8, max_pixels: int = DEFAULT_MAX_PIXELS,
                 annotations: str | Path | None = None, label_format: str = "yolo",
                 names: list[str] | None = None, difficult: str = "keep") -> ScanResult:
    """Check every image and label once; the result is cached as JSON keyed by files, sizes and times (and
    ``max_pixels``: images with more pixels are refused from their header, a decompression bomb's defence).

    ``annotations``: a COCO instances JSON to take the labels from when the images have no ``labels/``
    folder (a dataset given only as COCO JSON). ``label_format``: yolo (txt beside the images), voc (XML
    under Annotations/, classes by name: ``names`` needed) or visdrone (txt under annotations/).
    """
    if label_format not in LABEL_FORMATS:
        raise DatasetError(f"{source}: unknown label format '{label_format}' (known: {', '.join(LABEL_FORMATS)})")
    if label_format == "voc" and not names:
        raise DatasetError(f"{source}: VOC labels name their classes; the dataset's names are needed")
    files, misnamed = _utf8_names(list_images(source))
    json_labels = None
    if label_format == "yolo" and annotations:  # read (and so checked) even when only the evaluation uses it
        from_json, json_nc = labels_from_coco_json(annotations)
        if files and not label_path_for(files[0]).parent.is_dir():
            json_labels = from_json
        if json_nc > nc:
            raise DatasetError(f"{annotations}: {json_nc} categories but the dataset YAML names {nc} classes")
    labels_from = LabelSource(label_format, tuple(names or ()), difficult, json_labels)
    key = _fingerprint(files, nc, labels_from, max_pixels) + (f"|{annotations}" if json_labels is not None else "")
    if json_labels is not None:
        st = Path(annotations).stat()
        key = hashlib.sha256(f"{key}{st.st_size}{st.st_mtime_ns}".encode()).hexdigest()
    cache_file = cache_dir() / f"{key[:32]}.json"
    if cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            if cached.get("key") == key:
                return ScanResult(
                    images=cached["images"], shapes=[tuple(s) for s in cached["shapes"]],
                    labels=[np.array(x, dtype=np.float32).reshape(-1, 5) for x in cached["labels"]],
                    ignore=[np.array(x, dtype=np.float32).reshape(-1, 4) for x in cached["ignore"]],
                    problems=[tuple(p) for p in cached["problems"]], warnings=cached["warnings"],
                    source=str(source))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # stale or unreadable: rebuilt below
    result = ScanResult(source=str(source))
    result.problems += [(ascii(str(f)), "bad file name", f"{ascii(str(f))}: file name is not valid UTF-8; rename it")
                        for f in misnamed]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        checked = pool.map(lambda f: _check_pair(f, nc, labels_from, max_pixels), files)
        for image, (shape, found, dups) in zip(files, checked):
            if shape is None:
                result.problems.append((str(image), found.kind, found.message))
                continue
            if dups:
                result.warnings.append(f"{labels_from.label_file(image)}: {dups} duplicate label rows removed")
            result.warnings += found.notes
            result.images.append(str(image))
            result.shapes.append(shape)
            result.labels.append(found.labels)
            result.ignore.append(found.ignore)
    if json_labels is None and label_format == "yolo":
        _check_labels_exist([Path(p) for p in result.images], source)
    _write_json_atomic(cache_file, {
        "key": key, "images": result.images, "shapes": result.shapes,
        "labels": [x.tolist() for x in result.labels], "ignore": [x.tolist() for x in result.ignore],
        "problems": result.problems, "warnings": result.warnings})
    return result


def scan_split(config: dict[str, Any], split: str, workers: int = 8,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> ScanResult:
    """Scan one split of a dataset config from :func:`utils.data.formats.load_dataset_config`, in its format."""
    return scan_dataset(config[split], config["nc"], workers=workers, max_pixels=max_pixels,
                        annotations=config.get("annotations", {}).get(split),
                        label_format=config.get("format", "yolo"), names=config["names"],
                        difficult=config.get("difficult", "keep"))


def _utf8_names(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(usable, misnamed): file names that are not valid UTF-8 cannot be logged, cached or labelled."""
    usable, misnamed = [], []
    for f in files:
        try:
            str(f).encode("utf-8")
            usable.append(f)
        except UnicodeEncodeError:
            misnamed.append(f)
    return usable, misnamed


def _check_labels_exist(files: list[Path], source: str | list[str]) -> None:
    """Images but not one label file is a mistake (a misspelled labels/ folder), not an empty dataset."""
    if not files:
        return
    missing = sum(not label_path_for(f).is_file() for f in files)
    if missing == len(files):
        raise DatasetError(f"{source}: {len(files)} images but no label files; looked for them in "
                           f"{label_path_for(files[0]).parent} (images/ -> labels/, same name, .txt)")
    if missing > len(files) / 2:
        LOGGER.warning(f"{source}: {missing} of {len(files)} images have no label file (background images); "
                       f"labels are read from {label_path_for(files[0]).parent}")


def _write_json_atomic(path: Path, payload: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache is an optimisation: an unwritable place only costs a rescan


def describe_problems(scan: ScanResult, split: str, limit: int = 5) -> list[str]:
    """Log lines: counts per kind and the first few messages."""
    lines = []
    counts = scan.counts()
    if counts:
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        lines.append(f"{split}: skipped {len(scan.problems)} images ({summary})")
        lines += [f"  {msg}" for _, _, msg in scan.problems[:limit]]
        if len(scan.problems) > limit:
            lines.append(f"  ... {len(scan.problems) - limit} more")
    lines += [f"{split}: {w}" for w in scan.warnings[:limit]]
    return lines
