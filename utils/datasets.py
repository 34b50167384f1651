"""Datasets: YAML definitions, a checking scan with a non-pickle cache, and the YOLO dataset.

Labels are YOLO text files (``/images/`` -> ``/labels/``, rows ``cls cx cy w h`` normalised).
Nothing here writes into a dataset folder: caches go to the user cache directory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from utils.augmentations import (
    AlbumentationsPipeline,
    augment_hsv,
    letterbox,
    mixup,
    random_perspective,
    resize_longest_side,
)
from utils.boxes import xywh_to_xyxy, xyxy_to_xywh
from utils.logging import LOGGER
from utils.paths import find_named_file
from utils.yaml_files import YamlError, load_yaml_text

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
COORD_TOLERANCE = 1e-3  # label coordinates may exceed [0, 1] by this much (rounding in exporters); clipped
MIN_IMAGE_SIDE = 10
CACHE_VERSION = 2
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and the problem."""


def cache_dir() -> Path:
    root = os.environ.get("YOLOV5_SPD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "yolov5-spd")
    return Path(root) / "datasets"


# -------------------------------------------------------------------------------------- definition
def resolve_data_path(data: str | Path) -> Path:
    """A dataset YAML as given, or a bare name looked up in ``data/``."""
    path = find_named_file(data, DATA_DIR, ".yaml")
    if path is None:
        raise DatasetError(f"{data}: dataset YAML not found")
    return path


def names_from_mapping(names: dict, source: str) -> list[str]:
    """A ``{id: name}`` mapping as a list indexed by the integer ids, which must be exactly 0..nc-1
    (never sorted as text: {'0', '1', '2', '10'} would put '10' third)."""
    ids: dict[int, Any] = {}
    for key, value in names.items():
        try:
            index = int(str(key).strip())
        except ValueError:
            raise DatasetError(f"{source}: 'names' key {key!r} is not a class id (an integer)") from None
        if index in ids:
            raise DatasetError(f"{source}: 'names' has class id {index} twice")
        ids[index] = value
    expected = set(range(len(ids)))
    missing, extra = sorted(expected - set(ids)), sorted(set(ids) - expected)
    if missing or extra:
        raise DatasetError(f"{source}: 'names' ids must be exactly 0..{len(ids) - 1}; missing {missing}, "
                           f"unexpected {extra}")
    return [str(ids[i]) for i in range(len(ids))]


def load_dataset_config(data: str | Path) -> dict[str, Any]:
    """Read a dataset YAML; split paths are resolved against ``path`` (itself relative to the YAML)."""
    path = resolve_data_path(data)
    try:
        config = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    except YamlError as exc:
        raise DatasetError(str(exc)) from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    if not isinstance(config, dict):
        raise DatasetError(f"{path}: expected a mapping")
    names = config.get("names")
    if isinstance(names, dict):
        names = names_from_mapping(names, str(path))
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{path}: 'names' must be a non-empty list or {{id: name}} mapping")
    root = (path.parent / str(config.get("path", "."))).resolve()

    def resolve(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [resolve(v) for v in value]
        p = Path(str(value))
        return str(p if p.is_absolute() else root / p)

    out = {"yaml_file": str(path), "path": str(root), "names": [str(n) for n in names], "nc": len(names)}
    for split in ("train", "val", "test"):
        out[split] = resolve(config.get(split))
    if out["train"] is None and out["val"] is None:
        raise DatasetError(f"{path}: needs at least a 'train' or 'val' entry")
    annotations = config.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise DatasetError(f"{path}: 'annotations' must map split names to COCO instances JSON files")
    out["annotations"] = {k: resolve(v) for k, v in annotations.items()}
    out["generator"] = config.get("generator")
    if out["generator"]:
        _ensure_generated(out, path)
    return out


def _ensure_generated(config: dict[str, Any], yaml_path: Path) -> None:
    """Write an embedded synthetic dataset into its ``path`` the first time it is used."""
    spec = dict(config["generator"])
    if spec.pop("name", None) != "smallobj":
        raise DatasetError(f"{yaml_path}: unknown generator {config['generator']!r} (known: smallobj)")
    from utils.synthetic import generate_dataset

    root = Path(config["path"])
    if "site-packages" in yaml_path.parts or not os.access(_existing_parent(root), os.W_OK):
        # an installed package's data folder: generate into the user's cache instead
        root = cache_dir().parent / "generated" / root.name
        for split in ("train", "val", "test"):
            if config.get(split):
                config[split] = str(root / Path(config[split]).relative_to(config["path"]))
        config["path"] = str(root)
    generate_dataset(root, **{k: int(v) for k, v in spec.items()})


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def list_images(source: str | list[str]) -> list[Path]:
    """Image files from a folder (recursive), a text file of paths, or a list of either."""
    if isinstance(source, (list, tuple)):
        return [p for s in source for p in list_images(s)]
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file() and path.suffix == ".txt":
        base = path.parent
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Path(line) if Path(line).is_absolute() else (base / line).resolve() for line in lines]
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    raise DatasetError(f"{source}: no such image folder, list file or image")


def label_path_for(image: Path) -> Path:
    """``…/images/…/x.jpg`` -> ``…/labels/…/x.txt`` (the last ``images`` folder in the path)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


# ---------------------------------------------------------------------------------------- checking
@dataclass
class ScanResult:
    """Usable images with their sizes and labels, and what was skipped and why."""

    images: list[str] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)  # (h, w) of the original image
    labels: list[np.ndarray] = field(default_factory=list)  # (n, 5): cls, cx, cy, w, h (normalised)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (file, kind, message)
    warnings: list[str] = field(default_factory=list)
    source: str = ""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, kind, _ in self.problems:
            out[kind] = out.get(kind, 0) + 1
        return out

    @property
    def n_boxes(self) -> int:
        return int(sum(len(x) for x in self.labels))


def _check_image(path: Path) -> tuple[tuple[int, int] | None, str, str]:
    """Returns ((h, w), '', '') or (None, kind, message)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, "unreadable image", f"{path}: cannot read ({exc.strerror})"
    if not data:
        return None, "empty image", f"{path}: zero-byte file"
    if data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < 0:  # bytes after the marker (motion photos) are fine
        return None, "truncated image", f"{path}: truncated JPEG (no end-of-image marker)"
    size = image_size_from_header(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        return None, "huge image", (f"{path}: {size[1]}x{size[0]} pixels, over the limit of {MAX_IMAGE_PIXELS:,} "
                                    f"(raise it with --max-pixels)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "undecodable image", f"{path}: not a decodable image"
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        return None, "tiny image", f"{path}: image is {w}x{h}, smaller than {MIN_IMAGE_SIDE} px"
    return (h, w), "", ""


MAX_IMAGE_PIXELS = 100_000_000  # a decompression bomb (a 389 KB PNG of 20000x20000) is refused before decoding


def set_max_pixels(limit: int) -> None:
    """Raise or lower the decode limit (--max-pixels) for this process and the loader workers it forks."""
    global MAX_IMAGE_PIXELS
    if limit < 1:
        raise ValueError(f"--max-pixels must be >= 1, got {limit}")
    MAX_IMAGE_PIXELS = int(limit)


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """(h, w) read from the file header without decoding the pixels; None when the format is not known."""
    import io

    from PIL import Image  # Pillow comes with matplotlib; only the header is parsed

    Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check would raise before telling the size; ours follows
    try:
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
            return h, w
    except Exception:  # not an image PIL knows: OpenCV decides below
        return None


def read_rgb(path: str) -> np.ndarray | None:
    """An image as (H, W, 3) uint8 RGB with its EXIF orientation applied (as ``cv2.imread`` does), or None
    when it cannot be decoded. JPEGs go through torchvision's libjpeg-turbo decoder, which gives the same
    pixels as OpenCV's about 25 % faster and already in RGB (the loaders decode four images per mosaic);
    other formats, and JPEGs it refuses, through OpenCV."""
    if path.lower().endswith((".jpg", ".jpeg")):
        try:
            decoded = decode_jpeg(read_file(path), mode=ImageReadMode.RGB, apply_exif_orientation=True)
            return decoded.permute(1, 2, 0).numpy()  # the decoder's own interleaved buffer, no copy
        except RuntimeError:
            pass
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def parse_label_text(text: str, nc: int, source: str) -> tuple[np.ndarray | None, str, str, int]:
    """Check YOLO label rows. Returns (labels (n, 5), kind, message, duplicates dropped)."""
    rows = []
    for line_no, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError:
            return None, "bad label", f"{source}:{line_no}: non-numeric value in {line.strip()!r}", 0
        if not all(math.isfinite(v) for v in values):
            return None, "bad label", f"{source}:{line_no}: NaN or infinite value in {line.strip()!r}", 0
        if len(values) > 5 and len(values) % 2 == 1 and len(values) >= 7:  # polygon: cls x1 y1 x2 y2 ...
            xy = np.array(values[1:]).reshape(-1, 2)
            lo, hi = xy.min(0), xy.max(0)
            values = [values[0], *((lo + hi) / 2), *(hi - lo)]
        elif len(values) != 5:
            return None, "bad label", f"{source}:{line_no}: expected 5 numbers, got {len(values)}", 0
        cls = values[0]
        if cls != int(cls) or not 0 <= cls < nc:
            return None, "bad label", f"{source}:{line_no}: class {parts[0]} outside 0..{nc - 1}", 0
        cx, cy, w, h = values[1:]
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if w <= 0 or h <= 0:
            return None, "bad label", f"{source}:{line_no}: box width and height must be > 0", 0
        if min(x1, y1, cx, cy) < -COORD_TOLERANCE or max(x2, y2, cx, cy) > 1 + COORD_TOLERANCE:
            return None, "bad label", f"{source}:{line_no}: coordinates outside [0, 1]", 0
        rows.append(values)
    labels = np.array(rows, dtype=np.float32).reshape(-1, 5)
    if len(labels):  # clip the tolerated overhang so boxes stay inside the image
        xyxy = np.clip(xywh_to_xyxy(labels[:, 1:]), 0, 1)
        labels[:, 1:] = xyxy_to_xywh(xyxy)
    unique, first = np.unique(labels, axis=0, return_index=True)
    duplicates = len(labels) - len(unique)
    return labels[np.sort(first)], "", "", duplicates


def labels_from_coco_json(path: str | Path) -> tuple[dict[str, np.ndarray], int]:
    """YOLO labels (n, 5) per image file name from a COCO instances JSON; class = rank of the category id
    among the sorted ids (COCO's 91 ids -> 80 classes). Crowd regions are left out. Returns (labels, nc)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    category_ids = sorted(c["id"] for c in data.get("categories", []))
    index = {c: i for i, c in enumerate(category_ids)}
    images = {im["id"]: im for im in data.get("images", [])}
    rows: dict[str, list[list[float]]] = {Path(im["file_name"]).name: [] for im in images.values()}
    for ann in data.get("annotations", []):
        image = images.get(ann["image_id"])
        x, y, w, h = ann["bbox"]
        if image is None or ann.get("iscrowd", 0) or w <= 0 or h <= 0:
            continue
        iw, ih = image["width"], image["height"]
        rows[Path(image["file_name"]).name].append(
            [index[ann["category_id"]], (x + w / 2) / iw, (y + h / 2) / ih, w / iw, h / ih])
    return {k: np.array(v, dtype=np.float32).reshape(-1, 5) for k, v in rows.items()}, len(category_ids)


def _check_pair(image: Path, nc: int, json_labels: dict[str, np.ndarray] | None = None) -> tuple[Any, ...]:
    shape, kind, message = _check_image(image)
    if shape is None:
        return None, None, kind, message, 0
    if json_labels is not None:
        labels = json_labels.get(image.name)
        if labels is None:
            return None, None, "bad label", f"{image}: not in the annotations JSON", 0
        return shape, np.concatenate([labels[:, :1], np.clip(labels[:, 1:], 0, 1)], 1), "", "", 0
    label_file = label_path_for(image)
    if not label_file.is_file():
        return shape, np.zeros((0, 5), np.float32), "", "", 0
    try:
        text = label_file.read_bytes().decode("utf-8-sig")  # a byte-order mark is allowed
    except UnicodeDecodeError:
        return None, None, "bad label", f"{label_file}: not UTF-8 text", 0
    except OSError as exc:
        return None, None, "bad label", f"{label_file}: cannot read ({exc.strerror})", 0
    labels, kind, message, duplicates = parse_label_text(text, nc, str(label_file))
    if labels is None:
        return None, None, kind, message, 0
    return shape, labels, "", "", duplicates


def _fingerprint(files: list[Path], nc: int) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION} nc={nc} max_pixels={MAX_IMAGE_PIXELS}".encode())
    for f in files:
        for p in (f, label_path_for(f)):
            try:
                st = p.stat()
                digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{p}\0missing\n".encode())
    return digest.hexdigest()


def scan_dataset(source: str | list[str], nc: int, workers: int = 8, use_cache: bool = True,
                 annotations: str | Path | None = None) -> ScanResult:
    """Check every image and label once; the result is cached as JSON keyed by files, sizes and times.

    ``annotations``: a COCO instances JSON to take the labels from when the images have no ``labels/``
    folder (a dataset given only as COCO JSON).
    """
    files, misnamed = _utf8_names(list_images(source))
    json_labels = None
    if annotations and files and not label_path_for(files[0]).parent.is_dir():
        json_labels, json_nc = labels_from_coco_json(annotations)
        if json_nc > nc:
            raise DatasetError(f"{annotations}: {json_nc} categories but the dataset YAML names {nc} classes")
    key = _fingerprint(files, nc) + (f"|{annotations}" if json_labels is not None else "")
    if json_labels is not None:
        st = Path(annotations).stat()
        key = hashlib.sha256(f"{key}{st.st_size}{st.st_mtime_ns}".encode()).hexdigest()
    cache_file = cache_dir() / f"{key[:32]}.json"
    if use_cache and cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            if cached.get("key") == key:
                return ScanResult(
                    images=cached["images"], shapes=[tuple(s) for s in cached["shapes"]],
                    labels=[np.array(x, dtype=np.float32).reshape(-1, 5) for x in cached["labels"]],
                    problems=[tuple(p) for p in cached["problems"]], warnings=cached["warnings"],
                    source=str(source))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # stale or unreadable: rebuilt below
    result = ScanResult(source=str(source))
    result.problems += [(ascii(str(f)), "bad file name", f"{ascii(str(f))}: file name is not valid UTF-8; rename it")
                        for f in misnamed]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for image, (shape, labels, kind, message, dups) in zip(
                files, pool.map(lambda f: _check_pair(f, nc, json_labels), files)):
            if shape is None:
                result.problems.append((str(image), kind, message))
                continue
            if dups:
                result.warnings.append(f"{label_path_for(image)}: {dups} duplicate label rows removed")
            result.images.append(str(image))
            result.shapes.append(shape)
            result.labels.append(labels)
    if json_labels is None:
        _check_labels_exist([Path(p) for p in result.images], source)
    if use_cache:
        _write_json_atomic(cache_file, {
            "key": key, "images": result.images, "shapes": result.shapes,
            "labels": [x.tolist() for x in result.labels], "problems": result.problems,
            "warnings": result.warnings})
    return result


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


# ----------------------------------------------------------------------------------------- dataset
def rect_batch_shapes(shapes_hw: np.ndarray, batch_size: int, imgsz: int, stride: int = 32,
                      pad: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Order images by aspect ratio and give each batch the smallest stride-multiple shape that holds it.

    Returns (order, per-image (h, w) network input shape in that order). A batch that mixes orientations
    gets a square.
    """
    aspect = shapes_hw[:, 0] / shapes_hw[:, 1]  # h / w
    order = np.argsort(aspect, kind="stable")
    aspect = aspect[order]
    n = len(order)
    n_batches = math.ceil(n / batch_size)
    batch_shapes = np.ones((n_batches, 2))
    for b in range(n_batches):
        chunk = aspect[b * batch_size:(b + 1) * batch_size]
        lo, hi = chunk.min(), chunk.max()
        if hi < 1:
            batch_shapes[b] = [hi, 1]
        elif lo > 1:
            batch_shapes[b] = [1, 1 / lo]
    batch_shapes = (np.ceil(batch_shapes * imgsz / stride + pad).astype(int) * stride)
    per_image = batch_shapes[np.arange(n) // batch_size]
    return order, per_image


@dataclass
class Hyp:
    """Augmentation hyper-parameters (a subset of the hyp YAML)."""

    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    flipud: float = 0.0
    fliplr: float = 0.5
    mosaic: float = 1.0
    mixup: float = 0.0
    albumentations: float = 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Hyp:
        d = d or {}
        return cls(**{k: float(d[k]) for k in cls.__dataclass_fields__ if k in d})


class YoloDataset(Dataset):
    """YOLO images and labels.

    Training (``augment``): mosaic, random perspective, mixup, albumentations, HSV and flips.
    Validation: longest side to ``imgsz``, letterboxed into its rectangular batch shape (``rect``) or a
    square. Items are (image (3, H, W) uint8 RGB, labels (n, 6) = 0, cls, cx, cy, w, h normalised to the
    network input, path, (original (h, w), gain, (pad_x, pad_y))).
    """

    def __init__(self, scan: ScanResult, imgsz: int = 640, batch_size: int = 16, augment: bool = False,
                 hyp: Hyp | dict | None = None, rect: bool = False, stride: int = 32, seed: int = 0,
                 cache_images: bool = False, single_cls: bool = False) -> None:
        if not scan.images:
            raise DatasetError(f"{scan.source or 'dataset'}: no usable image ({len(scan.problems)} skipped)")
        self.imgsz, self.augment, self.stride, self.seed = imgsz, augment, stride, seed
        self.hyp = hyp if isinstance(hyp, Hyp) else Hyp.from_dict(hyp)
        self.files = list(scan.images)
        self.shapes = np.array(scan.shapes, dtype=np.int64).reshape(-1, 2)
        self.labels = [x.copy() for x in scan.labels]
        if single_cls:
            for x in self.labels:
                x[:, 0] = 0
        self.rect = rect
        self.mosaic = augment and not rect and self.hyp.mosaic > 0
        self.batch_input_shapes = None
        if rect:
            order, self.batch_input_shapes = rect_batch_shapes(self.shapes, batch_size, imgsz, stride,
                                                               pad=0.0 if augment else 0.5)
            self.files = [self.files[i] for i in order]
            self.shapes = self.shapes[order]
            self.labels = [self.labels[i] for i in order]
        self.albumentations = AlbumentationsPipeline(self.hyp.albumentations) if augment else None
        self.epoch = 0
        self.cached: list[np.ndarray | None] = [None] * len(self.files)
        if cache_images:
            with ThreadPoolExecutor(4) as pool:
                self.cached = list(pool.map(lambda i: self._read_resized(i)[0], range(len(self.files))))

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int, epoch: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, epoch, index))

    def _read_resized(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """RGB image with its longest side at ``imgsz`` (a cached copy when there is one)."""
        cached = self.cached[index] if hasattr(self, "cached") else None
        if cached is not None:
            return cached, tuple(self.shapes[index])
        image = read_rgb(self.files[index])
        if image is None:
            raise DatasetError(f"{self.files[index]}: could not be read (changed since the scan?)")
        image, _ = resize_longest_side(image, self.imgsz, augment=self.augment)
        return image, tuple(self.shapes[index])

    def _pixel_boxes(self, index: int, w: int, h: int, pad_x: float = 0, pad_y: float = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
        labels = self.labels[index]
        boxes = xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * (w, h, w, h) + (pad_x, pad_y, pad_x, pad_y)
        return boxes, labels[:, 0].copy()

    def _load_mosaic(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.imgsz
        xc, yc = (int(rng.uniform(s // 2, 2 * s - s // 2)) for _ in range(2))
        indices = [index, *rng.integers(0, len(self), 3).tolist()]
        canvas = np.full((2 * s, 2 * s, 3), 114, dtype=np.uint8)
        all_boxes, all_classes = [], []
        for k, i in enumerate(indices):
            image, _ = self._read_resized(i)
            h, w = image.shape[:2]
            if k == 0:  # top left
                x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
                x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
            elif k == 1:  # top right
                x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
                x1b, y1b = 0, h - (y2a - y1a)
            elif k == 2:  # bottom left
                x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
                x1b, y1b = w - (x2a - x1a), 0
            else:  # bottom right
                x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
                x1b, y1b = 0, 0
            canvas[y1a:y2a, x1a:x2a] = image[y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
            boxes, classes = self._pixel_boxes(i, w, h, x1a - x1b, y1a - y1b)
            all_boxes.append(boxes)
            all_classes.append(classes)
        boxes = np.concatenate(all_boxes, 0)
        classes = np.concatenate(all_classes, 0)
        np.clip(boxes, 0, 2 * s, out=boxes)
        hyp = self.hyp
        return random_perspective(canvas, boxes, classes, rng, degrees=hyp.degrees, translate=hyp.translate,
                                  scale=hyp.scale, shear=hyp.shear, perspective=hyp.perspective,
                                  border=(-s // 2, -s // 2))

    def _load_letterboxed(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
        image, (h0, w0) = self._read_resized(index)
        h, w = image.shape[:2]
        shape = (tuple(int(v) for v in self.batch_input_shapes[index]) if self.rect
                 else (self.imgsz, self.imgsz))
        image, gain, pad = letterbox(image, shape, scale_up=self.augment)
        boxes, classes = self._pixel_boxes(index, int(round(w * gain)), int(round(h * gain)), *pad)
        # one gain for both axes, from the heights (as the reference maps boxes back; sides were rounded up)
        total_gain = h * gain / h0
        return image, boxes, classes, ((h0, w0), total_gain, pad)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str, tuple]:
        """``item`` is an index, or (epoch, index) from ``EpochBatchSampler``."""
        epoch, index = item if isinstance(item, tuple) else (self.epoch, item)
        rng = self._rng(index, epoch)
        hyp = self.hyp
        if self.mosaic and rng.random() < hyp.mosaic:
            image, boxes, classes = self._load_mosaic(index, rng)
            meta = None
            if rng.random() < hyp.mixup:
                other = self._load_mosaic(int(rng.integers(0, len(self))), rng)
                image, boxes, classes = mixup(image, boxes, classes, other, rng)
        else:
            image, boxes, classes, meta = self._load_letterboxed(index)
            if self.augment:
                image, boxes, classes = random_perspective(
                    image, boxes, classes, rng, degrees=hyp.degrees, translate=hyp.translate,
                    scale=hyp.scale, shear=hyp.shear, perspective=hyp.perspective)
        h, w = image.shape[:2]
        if meta is None:
            meta = ((h, w), 1.0, (0.0, 0.0))
        if self.augment:
            image, boxes, classes = self.albumentations(image, boxes.astype(np.float32), classes, rng)
            augment_hsv(image, rng, hyp.hsv_h, hyp.hsv_s, hyp.hsv_v)
            # cv2.flip writes a contiguous image; a numpy flip's negative strides cost a slow copy later
            if rng.random() < hyp.flipud:
                image = cv2.flip(image, 0)
                boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
            if rng.random() < hyp.fliplr:
                image = cv2.flip(image, 1)
                boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        labels = torch.zeros((len(boxes), 6))
        if len(boxes):
            xywh = xyxy_to_xywh(np.asarray(boxes, dtype=np.float64)) / (w, h, w, h)
            labels[:, 1] = torch.from_numpy(np.asarray(classes, dtype=np.float32))
            labels[:, 2:] = torch.from_numpy(xywh.astype(np.float32))
        # (3, H, W) over the HWC pixels: channels-last, the layout the models run in, so no transposing copy
        chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return chw, labels, self.files[index], meta

    @staticmethod
    def collate(batch: list) -> tuple[torch.Tensor, torch.Tensor, list[str], list]:
        images, labels, paths, metas = zip(*batch)
        for i, lb in enumerate(labels):
            lb[:, 0] = i
        return stack_channels_last(images), torch.cat(labels, 0), list(paths), list(metas)


def stack_channels_last(images: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(B, C, H, W) channels-last batch of same-size (C, H, W) images whose memory is (H, W, C). The stacking
    is a plain copy of each image's pixels, and inside a loader worker ``default_collate`` puts the batch in
    shared memory, so handing it to the main process copies nothing."""
    return torch.utils.data.default_collate([image.permute(1, 2, 0) for image in images]).permute(0, 3, 1, 2)


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


def seed_worker(worker_id: int) -> None:
    """Distinct, reproducible NumPy seeds in each loader worker; OpenCV single-threaded there (the workers
    already fill the cores, and PyTorch does the same for its own threads in workers)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    cv2.setNumThreads(0)


def _loader_options(workers: int, generator: torch.Generator) -> dict:
    return {"num_workers": workers, "pin_memory": torch.cuda.is_available(), "collate_fn": YoloDataset.collate,
            "worker_init_fn": seed_worker, "generator": generator, "prefetch_factor": 4 if workers > 0 else None}


class EpochBatchSampler(torch.utils.data.Sampler):
    """Batches of (epoch, index) pairs, epoch after epoch, without end.

    The epoch travels with every index, so dataset copies inside persistent workers (which never see a
    ``set_epoch`` call) still draw each epoch's own augmentations; and one worker pipeline runs across epoch
    boundaries, so there is no refill pause at each epoch start. ``sampler`` is re-seeded per epoch through
    its ``set_epoch`` when it has one (``DistributedSampler``).
    """

    def __init__(self, sampler: torch.utils.data.Sampler, batch_size: int, start_epoch: int = 0) -> None:
        self.sampler, self.batch_size, self.start_epoch = sampler, batch_size, start_epoch

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for epoch in itertools.count(self.start_epoch):
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            indices = list(self.sampler)
            for k in range(0, len(indices), self.batch_size):
                yield [(epoch, i) for i in indices[k:k + self.batch_size]]


class EpochLoader:
    """A training loader iterated once per epoch over one endless worker pipeline (see ``EpochBatchSampler``).

    Call ``set_epoch(e)`` before each epoch's loop; the pipeline restarts only when ``e`` is not the epoch
    it already has under way (the first epoch, or a jump).
    """

    def __init__(self, dataset: YoloDataset, sampler: torch.utils.data.Sampler, batch_size: int, workers: int,
                 generator: torch.Generator) -> None:
        self.dataset = dataset
        self.batch_sampler = EpochBatchSampler(sampler, batch_size)
        self.loader = torch.utils.data.DataLoader(dataset, batch_sampler=self.batch_sampler,
                                                  **_loader_options(workers, generator))
        self._iterator: Iterator | None = None
        self._next_epoch = 0
        self._at_epoch_boundary = True

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        if self._iterator is None or not self._at_epoch_boundary or epoch != self._next_epoch:
            self._iterator = None  # its workers shut down when it is collected
            self.batch_sampler.start_epoch = self._next_epoch = epoch
            self._at_epoch_boundary = True
        self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        if self._iterator is None or not self._at_epoch_boundary:
            self.set_epoch(self._next_epoch if self._at_epoch_boundary else self._next_epoch + 1)
            self._iterator = iter(self.loader)
        self._at_epoch_boundary = False
        for _ in range(len(self)):
            yield next(self._iterator)
        self._next_epoch += 1
        self._at_epoch_boundary = True


def create_dataloader(dataset: YoloDataset, batch_size: int, workers: int = 2, shuffle: bool = False,
                      sampler: torch.utils.data.Sampler | None = None, seed: int = 0
                      ) -> torch.utils.data.DataLoader | EpochLoader:
    """Batches of uint8 images and (N, 6) targets; pinned memory on CUDA.

    An augmenting (training) dataset gets an ``EpochLoader`` (call its ``set_epoch`` before each epoch);
    any other a plain DataLoader with persistent workers.
    """
    workers = max(0, min(workers, os.cpu_count() or 1, batch_size if batch_size > 1 else workers))
    generator = torch.Generator()
    generator.manual_seed(seed)
    if dataset.augment:
        if sampler is None:
            sampler = (torch.utils.data.RandomSampler(dataset, generator=generator) if shuffle
                       else torch.utils.data.SequentialSampler(dataset))
        return EpochLoader(dataset, sampler, batch_size, workers, generator)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                                       sampler=sampler, persistent_workers=workers > 0,
                                       **_loader_options(workers, generator))
