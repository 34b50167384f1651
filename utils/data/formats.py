"""Dataset definitions and label formats: dataset YAMLs, image lists, YOLO label text, COCO instances JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from utils.boxes import xywh_to_xyxy, xyxy_to_xywh
from utils.paths import PACKAGE_ROOT, find_named_file
from utils.yaml_files import load_yaml_mapping

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
COORD_TOLERANCE = 1e-3  # label coordinates may exceed [0, 1] by this much (rounding in exporters); clipped
DATA_DIR = PACKAGE_ROOT / "data"


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and the problem."""


def cache_dir() -> Path:
    """Where scanned-label caches go: $YOLOV5_SPD_CACHE, else the user's cache folder (never beside the data)."""
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


def dataset_base(yaml_path: Path) -> Path:
    """What a dataset YAML's relative ``path`` is relative to: the YAML's own folder, except for the YAMLs shipped
    in the package's data/ (found by bare name), whose ``../datasets/NAME`` means ``./datasets/NAME`` in the
    current folder, the same from a checkout (run from its root) and from an installed package."""
    if yaml_path.resolve().parent == DATA_DIR.resolve():
        return Path.cwd() / "data"
    return yaml_path.parent


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
    config = load_yaml_mapping(path, DatasetError)
    names = config.get("names")
    if isinstance(names, dict):
        names = names_from_mapping(names, str(path))
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{path}: 'names' must be a non-empty list or {{id: name}} mapping")
    if "nc" in config and config["nc"] != len(names):
        raise DatasetError(f"{path}: 'nc' is {config['nc']!r} but 'names' lists {len(names)} classes; fix one "
                           f"(nc may be left out)")
    root = (dataset_base(path) / str(config.get("path", "."))).resolve()
    label_format, difficult = _label_options(config, path)
    lists = config.get("split_lists")  # a folder of split lists beside this YAML (file names of the images)
    lists_root = (path.parent / str(lists)).resolve() if lists else None
    if not config.get("generator") and not root.exists():
        hint = f"; get it from {config['source']} (nothing is downloaded)" if config.get("source") else ""
        raise DatasetError(f"{path}: dataset folder {root} not found{hint}")

    def resolve(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [resolve(v) for v in value]
        p = Path(str(value))
        if p.is_absolute():
            return str(p)
        if lists_root is not None and p.suffix == ".txt":
            return str(lists_root / p)
        return str(root / p)

    out = {"yaml_file": str(path), "path": str(root), "names": [str(n) for n in names], "nc": len(names),
           "format": label_format, "difficult": difficult}
    if label_format == "voc":
        out["image_root"] = str(root / str(config.get("images", "JPEGImages")))
    for split in ("train", "val", "test"):
        out[split] = resolve(config.get(split))
        if out.get("image_root") and isinstance(out[split], str) and out[split].endswith(".txt"):
            out[split] = image_list_file(Path(out[split]), Path(out["image_root"]))
    annotations = config.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise DatasetError(f"{path}: 'annotations' must map split names to COCO instances JSON files")
    out["annotations"] = {k: resolve(v) for k, v in annotations.items()}
    out["generator"] = config.get("generator")
    if out["generator"]:
        _ensure_generated(out, path)
    return out


def _label_options(config: dict[str, Any], path: Path) -> tuple[str, str]:
    """(label format, what to do with VOC's difficult objects), checked."""
    label_format = str(config.get("format", "yolo")).lower()
    if label_format not in ("yolo", "voc", "visdrone"):
        raise DatasetError(f"{path}: format '{label_format}' unknown (yolo, voc or visdrone; COCO JSON: "
                           f"'annotations')")
    difficult = str(config.get("difficult", "keep"))
    if difficult not in ("keep", "exclude"):
        raise DatasetError(f"{path}: difficult must be keep or exclude, got {difficult!r}")
    return label_format, difficult


def _ensure_generated(config: dict[str, Any], yaml_path: Path) -> None:
    """Write an embedded synthetic dataset into its ``path`` the first time it is used."""
    spec = dict(config["generator"])
    if spec.pop("name", None) != "smallobj":
        raise DatasetError(f"{yaml_path}: unknown generator {config['generator']!r} (known: smallobj)")
    from utils.data.synthetic import generate_dataset

    root = Path(config["path"])
    if not os.access(_existing_parent(root), os.W_OK):  # a read-only folder: generate into the user's cache
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


def list_lines(list_file: Path) -> list[str]:
    """The non-empty lines of a split list, UTF-8 with or without a byte-order mark; a list in another encoding
    or with no entry is a DatasetError naming the file."""
    try:
        text = list_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{list_file}: not UTF-8 text (byte {exc.start}); save the list as UTF-8") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DatasetError(f"{list_file}: the split list names no image")
    return lines


def image_list_file(list_file: Path, image_root: Path) -> list[str]:
    """A split list of image ids or file names (VOC's ImageSets/Main/*.txt, or a list of names) as image paths
    found anywhere under ``image_root``; an id without a suffix matches any image suffix."""
    if not list_file.is_file():
        raise DatasetError(f"{list_file}: split list not found")
    if not image_root.is_dir():
        raise DatasetError(f"{list_file}: image folder {image_root} not found")
    by_name: dict[str, Path] = {}
    for p in sorted(image_root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            by_name.setdefault(p.name, p)
            by_name.setdefault(p.stem, p)
    out = []
    list_lines(list_file)  # one line for a list in another encoding, or one that names nothing
    for line_no, line in enumerate(list_file.read_bytes().decode("utf-8-sig").splitlines(), 1):
        fields = line.split()
        if not fields or (len(fields) > 1 and fields[1] == "-1"):  # VOC class lists: "id -1" = not in the class
            continue
        found = by_name.get(fields[0])
        if found is None:
            raise DatasetError(f"{list_file}:{line_no}: no image {fields[0]} under {image_root}")
        out.append(str(found))
    return out


def list_images(source: str | list[str]) -> list[Path]:
    """Image files from a folder (recursive), a text file of paths, or a list of either."""
    if isinstance(source, (list, tuple)):
        return [p for s in source for p in list_images(s)]
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file() and path.suffix == ".txt":
        base = path.parent
        return [Path(line) if Path(line).is_absolute() else (base / line).resolve() for line in list_lines(path)]
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


def parse_label_text(text: str, nc: int, source: str) -> tuple[np.ndarray | None, str, str, int]:
    """Check YOLO label rows. Returns (labels (n, 5), kind, message, duplicates dropped); with labels, the
    message is a note on what was clipped or removed ("" when nothing was)."""
    rows, overhang = [], 0
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
        if min(cx, cy) < -COORD_TOLERANCE or max(cx, cy) > 1 + COORD_TOLERANCE:  # pixels, or another image's
            return None, "bad label", f"{source}:{line_no}: coordinates outside [0, 1] (box centre {cx:g}, {cy:g})", 0
        overhang += min(x1, y1) < -COORD_TOLERANCE or max(x2, y2) > 1 + COORD_TOLERANCE
        rows.append(values)
    labels = np.array(rows, dtype=np.float32).reshape(-1, 5)
    notes = []
    if len(labels):  # boxes overhanging the image are clipped to it, as yolov5 users expect
        xyxy = np.clip(xywh_to_xyxy(labels[:, 1:].astype(np.float64)), 0, 1)
        labels[:, 1:] = xyxy_to_xywh(xyxy)
        degenerate = (labels[:, 3] <= 0) | (labels[:, 4] <= 0)
        if degenerate.any():
            notes.append(f"{int(degenerate.sum())} boxes with no area inside the image removed")
            labels = labels[~degenerate]
    if overhang:
        notes.append(f"{overhang} boxes overhanging the image clipped to it")
    unique, first = np.unique(labels, axis=0, return_index=True)
    duplicates = len(labels) - len(unique)
    return labels[np.sort(first)], "", f"{source}: {'; '.join(notes)}" if notes else "", duplicates


def labels_from_coco_json(path: str | Path) -> tuple[dict[str, np.ndarray], int]:
    """YOLO labels (n, 5) per image file name from a COCO instances JSON; class = rank of the category id
    among the sorted ids (COCO's 91 ids -> 80 classes). Crowd regions are left out; boxes overhanging the
    image are clipped (as YOLO labels are). A malformed entry is a DatasetError naming the file and the entry.
    Returns (labels, nc)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable COCO JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path}: not a COCO instances file (no 'images' list)")
    try:
        category_ids = sorted(int(c["id"]) for c in data.get("categories", []))
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{path}: every entry of 'categories' needs an integer 'id'") from None
    index = {c: i for i, c in enumerate(category_ids)}
    images = {}
    for k, im in enumerate(data["images"]):
        where = f"{path}: images[{k}]"
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DatasetError(f"{where}: needs 'id' and 'file_name'")
        size = [im.get("width"), im.get("height")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in size):
            raise DatasetError(f"{where} ({im['file_name']}): 'width' and 'height' must be positive numbers, got "
                               f"{size[0]!r} and {size[1]!r}")
        images[im["id"]] = im
    rows: dict[str, list[list[float]]] = {Path(im["file_name"]).name: [] for im in images.values()}
    for k, ann in enumerate(data.get("annotations", [])):
        row = _coco_annotation_row(ann, f"{path}: annotations[{k}] (id {_get(ann, 'id')})", images, index)
        if row is not None:
            rows[row[0]].append(row[1])
    return {k: np.array(v, dtype=np.float32).reshape(-1, 5) for k, v in rows.items()}, len(category_ids)


def _get(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None


def _coco_annotation_row(ann: Any, where: str, images: dict, index: dict[int, int]
                         ) -> tuple[str, list[float]] | None:
    """(file name, YOLO row) of one annotation; None for crowd regions and empty boxes."""
    if not isinstance(ann, dict):
        raise DatasetError(f"{where}: not an object")
    image = images.get(ann.get("image_id"))
    if image is None:
        raise DatasetError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
    if ann.get("category_id") not in index:
        raise DatasetError(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
    box = ann.get("bbox")
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
        raise DatasetError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {box!r}")
    if ann.get("iscrowd", 0):
        return None
    iw, ih = image["width"], image["height"]
    x1, y1 = max(box[0], 0.0), max(box[1], 0.0)
    x2, y2 = min(box[0] + box[2], iw), min(box[1] + box[3], ih)
    if x2 <= x1 or y2 <= y1:
        if box[2] > 0 and box[3] > 0:  # a real box entirely outside its image
            raise DatasetError(f"{where}: bbox {box} lies outside the {iw}x{ih} image {image['file_name']}")
        return None  # zero-size boxes: COCO has a few, and yolov5's converter skips them too
    return Path(image["file_name"]).name, [index[ann["category_id"]], (x1 + x2) / 2 / iw, (y1 + y2) / 2 / ih,
                                           (x2 - x1) / iw, (y2 - y1) / ih]
