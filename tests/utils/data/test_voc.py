"""Pascal VOC XML read where it lies (utils/data/voc.py), through the dataset YAML and the scan."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from utils.data.formats import DatasetError, load_dataset_config
from utils.data.scan import scan_split

NAMES = ["Person", "Car"]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))


def _xml(objects: list[tuple], w: int = 80, h: int = 60, extra: str = "") -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for name, x1, y1, x2, y2, difficult in objects)
    return f"{extra}<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{body}</annotation>"


def make_voc(root: Path, annotations: dict[str, str], split: list[str] | None = None) -> Path:
    """A VOC folder (JPEGImages/, Annotations/, ImageSets/Main/train.txt) and a dataset YAML for it."""
    for stem, xml in annotations.items():
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "JPEGImages" / f"{stem}.jpg"), np.full((60, 80, 3), 70, np.uint8))
        (root / "Annotations").mkdir(exist_ok=True)
        if xml is not None:
            (root / "Annotations" / f"{stem}.xml").write_text(xml)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(split or annotations) + "\n")
    yaml_file = root / "voc.yaml"
    yaml_file.write_text(f"path: .\nformat: voc\ntrain: ImageSets/Main/train.txt\nval: JPEGImages\nnames: {NAMES}\n")
    return yaml_file


def test_voc_objects_become_yolo_rows_with_classes_by_name(tmp_path):
    data = make_voc(tmp_path / "voc", {"a": _xml([("Car", 8, 6, 28, 16, 0), ("Person", 40, 30, 44, 38, 0)]),
                                       "b": _xml([])})
    config = load_dataset_config(data)
    scan = scan_split(config, "train")
    assert [Path(p).name for p in scan.images] == ["a.jpg", "b.jpg"] and not scan.problems
    expected = np.array([[1, 18 / 80, 11 / 60, 20 / 80, 10 / 60], [0, 42 / 80, 34 / 60, 4 / 80, 8 / 60]], np.float32)
    np.testing.assert_allclose(scan.labels[0], expected, atol=1e-6)
    assert scan.labels[1].shape == (0, 5)


def test_split_lists_take_ids_or_file_names(tmp_path):
    data = make_voc(tmp_path / "voc", {"a": _xml([]), "b": _xml([])}, split=["b.jpg", "a 1", "c -1"])
    assert [Path(p).name for p in load_dataset_config(data)["train"]] == ["b.jpg", "a.jpg"]
    (tmp_path / "voc" / "ImageSets" / "Main" / "train.txt").write_text("a\nmissing\n")
    with pytest.raises(DatasetError, match=r"train.txt:2: no image missing"):
        load_dataset_config(data)


@pytest.mark.parametrize(("xml", "message"), [
    (None, "annotation XML missing for a.jpg"),
    ("<annotation><object>", "malformed XML"),
    (_xml([("Truck", 1, 1, 5, 5, 0)]), r"object 0 \(Truck\): class 'Truck' is not in the dataset's names"),
    (_xml([("Car", 1, 1, 5, 5, 0), ("Car", 50, 20, 120, 40, 0)]), r"object 1 \(Car\): box .* outside the 80x60"),
    (_xml([("Car", 5, 5, 5, 9, 0)]), r"object 0 \(Car\): empty box"),
    (_xml([("Car", 1, 1, "x", 5, 0)]), r"<xmax> is 'x', not a number"),
    (_xml([], w=640, h=512), "<size> says 640x512 but a.jpg is 80x60"),
    (_xml([], extra='<!DOCTYPE a [<!ENTITY e "lol">]>'), "DOCTYPE/ENTITY declarations are not allowed"),
])
def test_each_broken_annotation_is_one_line_naming_the_file(tmp_path, xml, message):
    data = make_voc(tmp_path / "voc", {"a": xml, "b": _xml([("Car", 1, 1, 9, 9, 0)])})
    scan = scan_split(load_dataset_config(data), "train")
    assert [Path(p).name for p in scan.images] == ["b.jpg"]  # the good image stays
    (file, kind, text), = scan.problems
    assert kind == "bad label" and "\n" not in text and "a." in text
    assert __import__("re").search(message, text), text


def test_small_overhang_is_clipped_and_reported(tmp_path):
    data = make_voc(tmp_path / "voc", {"a": _xml([("Car", -1, 2, 81, 10, 0)])})
    scan = scan_split(load_dataset_config(data), "train")
    np.testing.assert_allclose(scan.labels[0][0, 1:], [0.5, 6 / 60, 1.0, 8 / 60], atol=1e-6)
    assert any("1 boxes overhanging" in w for w in scan.warnings)


def test_difficult_objects_are_kept_or_excluded(tmp_path):
    xml = _xml([("Car", 8, 6, 28, 16, 1), ("Person", 40, 30, 44, 38, 0)])
    data = make_voc(tmp_path / "voc", {"a": xml})
    kept = scan_split(load_dataset_config(data), "train")
    assert len(kept.labels[0]) == 2 and any("1 difficult objects kept" in w for w in kept.warnings)
    data.write_text(data.read_text() + "difficult: exclude\n")
    excluded = scan_split(load_dataset_config(data), "train")
    assert excluded.labels[0][:, 0].tolist() == [0] and any("masked as ignored regions" in w for w in excluded.warnings)
    np.testing.assert_allclose(excluded.ignore[0], [[8 / 80, 6 / 60, 28 / 80, 16 / 60]], atol=1e-6)  # not a miss
    data.write_text(data.read_text().replace("exclude", "maybe"))
    with pytest.raises(DatasetError, match="difficult must be keep or exclude"):
        load_dataset_config(data)


def test_a_missing_dataset_folder_says_where_to_get_it(tmp_path):
    yaml_file = tmp_path / "d.yaml"
    yaml_file.write_text("source: https://example.org/set\npath: nowhere\nformat: voc\ntrain: a.txt\nnames: [a]\n")
    with pytest.raises(DatasetError, match=r"dataset folder .*nowhere not found; get it from https://example.org"):
        load_dataset_config(yaml_file)


def test_shipped_hit_uav_yaml_reads_the_release_layout(tmp_path):
    """data/hit_uav.yaml's scene-grouped lists resolve against a release folder laid out as normal_xml/."""
    import yaml

    from utils.data.formats import DATA_DIR

    spec = yaml.safe_load((DATA_DIR / "hit_uav.yaml").read_text())
    assert spec["format"] == "voc" and spec["names"][0] == "Person"
    names = {s: (DATA_DIR / "hit_uav" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert [len(v) for v in names.values()] == [1882, 374, 642]
    flights = {s: {"_".join(n.split("_")[:4]) for n in v} for s, v in names.items()}
    assert not flights["train"] & flights["val"] and not flights["train"] & flights["test"]  # no leak
    release = tmp_path / "normal_xml"
    picks = {s: v[:2] for s, v in names.items()}
    make_voc(release, {Path(n).stem: _xml([("Car", 1, 1, 9, 9, 0)]) for v in picks.values() for n in v})
    for s, v in picks.items():
        (tmp_path / f"{s}.txt").write_text("\n".join(v) + "\n")
    spec.update(path=str(release), split_lists=str(tmp_path))
    local = tmp_path / "hit_uav.yaml"
    local.write_text(yaml.safe_dump(spec))
    config = load_dataset_config(local)
    scan = scan_split(config, "val")
    assert [Path(p).name for p in scan.images] == picks["val"] and scan.n_boxes == 2


def test_a_namespaced_xml_and_a_word_for_difficult_are_read(tmp_path):
    plain = _xml([("Car", 8, 6, 28, 16, 0), ("Person", 40, 30, 44, 38, "True")])
    namespaced = plain.replace("<annotation>", '<annotation xmlns="http://example.org/voc">')
    data = make_voc(tmp_path / "voc", {"a": namespaced})
    (tmp_path / "voc" / "voc.yaml").write_text((tmp_path / "voc" / "voc.yaml").read_text() + "difficult: exclude\n")
    scan = scan_split(load_dataset_config(data), "train")
    assert not scan.problems
    np.testing.assert_allclose(scan.labels[0], [[1, 18 / 80, 11 / 60, 20 / 80, 10 / 60]], atol=1e-6)  # no box lost


def test_utf16_doctype_unicode_names_and_repeated_objects(tmp_path):
    import unicodedata

    composed, decomposed = unicodedata.normalize("NFC", "Ça"), unicodedata.normalize("NFD", "Ça")
    attack = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]>' + _xml([])
    twice = _xml([("Car", 8, 6, 28, 16, 0), ("Car", 8, 6, 28, 16, 0), ("Person", 40, 30, 44, 38, 0)])
    data = make_voc(tmp_path / "voc", {"a": None, "b": twice, "c": _xml([(decomposed, 8, 6, 28, 16, 0)])})
    (tmp_path / "voc" / "Annotations" / "a.xml").write_bytes(attack.encode("utf-16"))
    data.write_text(data.read_text().replace(str(NAMES), str([composed, "Car", "Person"])))
    scan = scan_split(load_dataset_config(data), "train")
    problems = {Path(p).name: message for p, _, message in scan.problems}
    assert "DOCTYPE" in problems["a.jpg"]  # refused in UTF-16 as in UTF-8
    labels = dict(zip((Path(p).name for p in scan.images), scan.labels))
    assert len(labels["b.jpg"]) == 2 and any("1 duplicate label rows removed" in w for w in scan.warnings)
    assert labels["c.jpg"][:, 0].tolist() == [0]  # the decomposed name is the YAML's composed one


def test_split_lists_with_a_bom_another_encoding_or_nothing_in_them(tmp_path):
    data = make_voc(tmp_path / "voc", {"a": _xml([]), "b": _xml([])})
    split = tmp_path / "voc" / "ImageSets" / "Main" / "train.txt"
    split.write_bytes("\ufeffa\nb\n".encode())
    assert [Path(p).name for p in load_dataset_config(data)["train"]] == ["a.jpg", "b.jpg"]
    split.write_bytes("a\nb\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="train.txt: not UTF-8 text"):
        load_dataset_config(data)
    split.write_text("\n  \n")
    with pytest.raises(DatasetError, match="train.txt: the split list names no image"):
        load_dataset_config(data)
