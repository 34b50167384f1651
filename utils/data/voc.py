"""Pascal VOC XML labels, read where they lie: ``…/JPEGImages/x.jpg`` (or ``…/images/x.jpg``) is labelled by
``…/Annotations/x.xml``; each ``<object>`` becomes one YOLO row, its class the position of ``<name>`` in the
dataset YAML's names.

Coordinates are taken as pixel edges (``xmax - xmin`` is the width), as labelImg, CVAT and most exporters
write them; the original VOC devkit's 1-based inclusive convention differs by one pixel of width.
``difficult`` objects are kept (``difficult: keep``, the default) or, with ``difficult: exclude`` in the dataset
YAML, masked as ignored regions: painted grey in training and validation, so they are neither learned nor
counted, and a detection of one is not a false positive (what the VOC devkit does). The scan counts them.
"""

from __future__ import annotations

import math
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from utils.data.label_files import LabelRead, annotation_path, failed

OVERHANG_PIXELS = 2.0  # a box may overhang the image by this much (annotation-tool rounding); clipped


def voc_xml_path(image: Path) -> Path:
    """Where Pascal VOC keeps the annotation of ``image`` (Annotations/<stem>.xml)."""
    return annotation_path(image, "Annotations", ".xml")


def _number(node: ET.Element, tag: str, source: str) -> float:
    child = node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f"{source}: <{tag}> missing")
    try:
        value = float(child.text.strip())
    except ValueError:
        raise ValueError(f"{source}: <{tag}> is {child.text.strip()!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{source}: <{tag}> is {child.text.strip()}")
    return value


def _read_xml(xml: Path):
    """The parsed root element, or a LabelRead saying why not."""
    if not xml.is_file():
        return failed(f"{xml}: annotation XML missing")
    try:
        text = xml.read_bytes()
    except OSError as exc:
        return failed(f"{xml}: cannot read ({exc.strerror})")
    if any(marker.encode(encoding) in text for marker in ("<!DOCTYPE", "<!ENTITY")  # how XML files attack a
           for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")):  # parser, in any encoding
        return failed(f"{xml}: DOCTYPE/ENTITY declarations are not allowed in annotation XML")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return failed(f"{xml}: malformed XML ({exc})")
    for element in root.iter():  # <annotation xmlns="..."> names every tag {namespace}tag: read the plain names
        if isinstance(element.tag, str) and element.tag.startswith("{"):
            element.tag = element.tag.split("}", 1)[1]
    return root


def _check_size(root: ET.Element, xml: Path, image: Path, w: int, h: int) -> None:
    size = root.find("size")
    if size is not None and size.find("width") is not None:
        xw, xh = _number(size, "width", str(xml)), _number(size, "height", str(xml))
        if (xw, xh) != (w, h) and xw > 0 and xh > 0:
            raise ValueError(f"{xml}: <size> says {xw:g}x{xh:g} but {image.name} is {w}x{h}")


def _read_object(obj: ET.Element, where: str, w: int, h: int) -> tuple[tuple[float, ...], bool]:
    """((x1, y1, x2, y2) clipped to the image, whether clipping moved it); ValueError naming the object."""
    box = obj.find("bndbox")
    if box is None:
        raise ValueError(f"{where}: <bndbox> missing")
    x1, y1, x2, y2 = (_number(box, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"{where}: empty box ({x1:g}, {y1:g}, {x2:g}, {y2:g})")
    if x1 < -OVERHANG_PIXELS or y1 < -OVERHANG_PIXELS or x2 > w + OVERHANG_PIXELS or y2 > h + OVERHANG_PIXELS:
        raise ValueError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) outside the {w}x{h} image")
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
    return clipped, clipped != (x1, y1, x2, y2)


def read_voc_labels(image: Path, shape_hw: tuple[int, int], names: list[str], difficult: str = "keep") -> LabelRead:
    """One image's XML as YOLO rows. A missing or malformed file, an unknown class name or a box outside the
    image is a problem naming the file and the object; the image is then skipped (and reported)."""
    xml = voc_xml_path(image)
    root = _read_xml(xml)
    if isinstance(root, LabelRead):
        return failed(f"{root.message} for {image.name}") if not xml.is_file() else root
    h, w = shape_hw
    index = {unicodedata.normalize("NFC", n): i for i, n in enumerate(names)}  # 'Ça' composed or not: one name
    rows, ignore, notes, clipped, n_difficult = [], [], [], 0, 0
    try:
        _check_size(root, xml, image, w, h)
        for k, obj in enumerate(root.findall("object")):
            name = unicodedata.normalize("NFC", (obj.findtext("name") or "").strip())
            where = f"{xml}: object {k} ({name or 'no name'})"
            if name not in index:
                raise ValueError(f"{where}: class '{name}' is not in the dataset's names {names}")
            (x1, y1, x2, y2), moved = _read_object(obj, where, w, h)
            clipped += moved
            is_difficult = (obj.findtext("difficult") or "0").strip().lower() in ("1", "true")
            n_difficult += is_difficult
            if is_difficult and difficult == "exclude":  # neither learned nor scored: an ignored region
                ignore.append([x1 / w, y1 / h, x2 / w, y2 / h])
            else:
                rows.append([index[name], (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
    except ValueError as exc:
        return failed(str(exc))
    if clipped:
        notes.append(f"{xml}: {clipped} boxes overhanging the image by up to {OVERHANG_PIXELS:g} px clipped")
    if n_difficult:
        verb = "masked as ignored regions" if difficult == "exclude" else "kept"
        notes.append(f"{xml}: {n_difficult} difficult objects {verb} (difficult: {difficult})")
    return LabelRead(np.array(rows, dtype=np.float32).reshape(-1, 5), notes=notes,
                     ignore=np.array(ignore, dtype=np.float32).reshape(-1, 4))
