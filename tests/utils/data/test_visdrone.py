"""VisDrone-DET txt read where it lies (utils/data/visdrone.py): classes 1-10, ignored regions masked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from utils.data.dataset import YoloDataset
from utils.data.formats import load_dataset_config
from utils.data.scan import scan_split
from utils.data.visdrone import VISDRONE_NAMES


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))


def make_visdrone(root: Path, annotations: dict[str, str | None]) -> Path:
    """VisDrone2019-DET-val/{images,annotations} with 100x80 images of value 200, and a dataset YAML."""
    split = root / "VisDrone2019-DET-val"
    (split / "images").mkdir(parents=True)
    (split / "annotations").mkdir()
    for stem, text in annotations.items():
        cv2.imwrite(str(split / "images" / f"{stem}.png"), np.full((80, 100, 3), 200, np.uint8))
        if text is not None:
            (split / "annotations" / f"{stem}.txt").write_text(text)
    yaml_file = root / "VisDrone.yaml"
    yaml_file.write_text(f"path: .\nformat: visdrone\nval: VisDrone2019-DET-val/images\nnames: {VISDRONE_NAMES}\n")
    return yaml_file


def test_categories_become_classes_and_ignored_regions_stay_out_of_the_boxes(tmp_path):
    text = ("10,20,30,10,1,4,0,0\n"      # car -> class 3
            "50,40,6,8,1,1,0,1\n"        # pedestrian -> class 0
            "0,60,40,20,0,0,0,0\n"       # ignored region
            "70,0,30,20,1,11,0,0\n"      # others: ignored too
            "80,60,10,10,0,5,0,0\n")     # a van the annotators marked score 0: ignored
    data = make_visdrone(tmp_path, {"a": text})
    scan = scan_split(load_dataset_config(data), "val")
    np.testing.assert_allclose(scan.labels[0], [[3, 0.25, 0.3125, 0.3, 0.125], [0, 0.53, 0.55, 0.06, 0.1]], atol=1e-6)
    np.testing.assert_allclose(scan.ignore[0], [[0, 0.75, 0.4, 1], [0.7, 0, 1, 0.25], [0.8, 0.75, 0.9, 0.875]],
                               atol=1e-6)


def test_ignored_regions_are_painted_grey_in_loaded_images(tmp_path):
    data = make_visdrone(tmp_path, {"a": "10,20,30,10,1,4,0,0\n0,60,40,20,0,0,0,0\n"})
    dataset = YoloDataset(scan_split(load_dataset_config(data), "val"), imgsz=100, augment=False, rect=True)
    image, labels, _, meta = dataset[0]
    pad_x, pad_y = (int(v) for v in meta[2])
    pixels = image.permute(1, 2, 0).numpy()[pad_y:pad_y + 80, pad_x:pad_x + 100]
    assert (pixels[62:78, 2:38] == 114).all()  # inside the ignored region
    assert (pixels[25, 20] == 200).all() and (pixels[10, 60] == 200).all()  # the car and the background
    assert len(labels) == 1


@pytest.mark.parametrize(("text", "message"), [
    (None, "annotation file missing for a.png"),
    ("10,20,30\n", r"a.txt:1: expected 8 comma-separated numbers, got 3"),
    ("10,20,x,10,1,4,0,0\n", r"a.txt:1: non-numeric value"),
    ("10,20,30,10,1,12,0,0\n", r"a.txt:1: category 12 outside 0..11"),
    ("1,1,5,5,1,4,0,0\n10,20,nan,10,1,4,0,0\n", r"a.txt:2: NaN or infinite value"),
    ("90,20,30,10,1,4,0,0\n", r"a.txt:1: box \(90, 20, 120, 30\) outside the 100x80 image"),
    ("10,20,0,10,1,4,0,0\n", r"a.txt:1: box width and height must be > 0"),
])
def test_each_broken_annotation_is_one_line_naming_the_file(tmp_path, text, message):
    import re

    data = make_visdrone(tmp_path, {"a": text, "b": "1,1,5,5,1,4,0,0\n"})
    scan = scan_split(load_dataset_config(data), "val")
    assert [Path(p).name for p in scan.images] == ["b.png"]
    (_, kind, line), = scan.problems
    assert kind == "bad label" and "\n" not in line and re.search(message, line), line


def test_shipped_visdrone_yaml_names_the_ten_classes():
    import yaml

    from utils.data.formats import DATA_DIR

    spec = yaml.safe_load((DATA_DIR / "VisDrone.yaml").read_text())
    assert spec["format"] == "visdrone" and list(spec["names"].values()) == VISDRONE_NAMES
    assert spec["val"] == "VisDrone2019-DET-val/images"


def test_a_box_under_an_ignored_region_is_dropped_with_a_note(tmp_path):
    text = ("10,20,30,10,1,4,0,0\n"      # a car inside the ignored region below: painted grey, so dropped
            "60,50,10,10,1,4,0,0\n"      # a car a quarter inside it: kept
            "0,0,65,45,0,0,0,0\n")       # ignored region
    data = make_visdrone(tmp_path, {"a": text})
    scan = scan_split(load_dataset_config(data), "val")
    np.testing.assert_allclose(scan.labels[0], [[3, 0.65, 0.6875, 0.1, 0.125]], atol=1e-6)
    assert any("1 boxes at least half inside an ignored region dropped" in n for n in scan.warnings)


def test_a_results_file_score_is_refused_not_read_as_ground_truth(tmp_path):
    data = make_visdrone(tmp_path, {"r": "10,10,20,20,-1,4,0,0\n", "g": "10,10,20,20,1,4,0,0\n"})
    scan = scan_split(load_dataset_config(data), "val")
    problems = {Path(p).name: message for p, _, message in scan.problems}
    assert "score -1" in problems["r.png"] and "results file" in problems["r.png"]
    assert [Path(p).name for p in scan.images] == ["g.png"]
