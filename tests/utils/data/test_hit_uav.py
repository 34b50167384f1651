"""HIT-UAV from ../shared (skipped when absent): the real thermal drone images train and validate, and the split
lists shipped in data/hit_uav/ are the shared scene-grouped split."""

from __future__ import annotations

from pathlib import Path

import pytest

import train
from utils.data.formats import DATA_DIR, load_dataset_config
from utils.data.scan import scan_split


@pytest.fixture()
def hit_uav(shared) -> Path:
    root = shared / "data" / "hit_uav"
    if not (root / "hit_uav.yaml").is_file():
        pytest.skip("../shared/data/hit_uav is absent")
    return root


def test_shipped_split_lists_are_the_scene_grouped_split(hit_uav):
    for split in ("train", "val", "test"):
        shipped = (DATA_DIR / "hit_uav" / f"{split}.txt").read_text().split()
        assert shipped == (hit_uav / "splits" / f"{split}.txt").read_text().split(), split
    on_disk = sorted(p.name for p in (hit_uav / "images" / "val").iterdir())
    assert on_disk == sorted((DATA_DIR / "hit_uav" / "val.txt").read_text().split())


def test_a_few_real_thermal_images_train_and_validate(hit_uav, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    lists = {}
    for split, n in (("train", 8), ("val", 4)):
        picks = sorted((hit_uav / "images" / split).glob("*.jpg"))[:n]
        lists[split] = tmp_path / f"{split}.txt"
        lists[split].write_text("".join(f"{p}\n" for p in picks))
    data = tmp_path / "hit_uav_few.yaml"
    names = load_dataset_config(hit_uav / "hit_uav.yaml")["names"]
    data.write_text(f"path: {tmp_path}\ntrain: train.txt\nval: val.txt\nnames: {names}\n")
    config = load_dataset_config(data)
    scan = scan_split(config, "train")
    lines = sum(len((hit_uav / "labels" / "train" / Path(p).with_suffix(".txt").name).read_text().split("\n")) - 1
                for p in scan.images)
    assert not scan.problems and scan.n_boxes == lines and {tuple(s) for s in scan.shapes} == {(512, 640)}
    result = train.train(train.parse_args(["--data", str(data), "--imgsz", "96", "--epochs", "1", "--batch-size", "4",
                                           "--workers", "0", "--noplots", "--project", str(tmp_path / "runs")]))
    assert "AP_S" in result["coco"] and (tmp_path / "runs" / "exp" / "weights" / "best.pt").is_file()
