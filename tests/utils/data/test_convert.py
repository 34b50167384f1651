"""utils/data/convert.py: any readable dataset written as YOLO txt in a new folder; the YOLO reader then gives
the same boxes as the original reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.utils.data.test_visdrone import make_visdrone
from tests.utils.data.test_voc import _xml, make_voc
from utils.data.convert import convert_dataset, main
from utils.data.formats import DatasetError, load_dataset_config
from utils.data.scan import scan_split


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_voc_converted_reads_back_as_the_same_boxes(tmp_path):
    data = make_voc(tmp_path / "voc", {"a": _xml([("Car", 8, 6, 28, 16, 0), ("Person", 40, 30, 44, 38, 1)]),
                                       "b": _xml([("Car", 1.5, 2.5, 79, 59, 0)])})
    before = _snapshot(tmp_path / "voc")
    summary = convert_dataset(data, tmp_path / "out", ("train",))
    assert summary["train"] == {"images": 2, "boxes": 3, "skipped": 0, "ignored_regions": 0}
    original = scan_split(load_dataset_config(data), "train")
    converted = scan_split(load_dataset_config(tmp_path / "out" / "data.yaml"), "train")
    assert [Path(p).name for p in converted.images] == [Path(p).name for p in original.images]
    for a, b in zip(original.labels, converted.labels):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert _snapshot(tmp_path / "voc") == before  # the source is untouched


def test_visdrone_converted_counts_the_ignored_regions(tmp_path, capsys):
    data = make_visdrone(tmp_path / "vd", {"a": "10,20,30,10,1,4,0,0\n0,60,40,20,0,0,0,0\n"})
    main(["--data", str(data), "--out", str(tmp_path / "out"), "--splits", "val"])
    out = capsys.readouterr().out
    assert "val: 1 images, 1 boxes" in out and "1 ignored regions have no YOLO form" in out
    assert (tmp_path / "out" / "labels" / "val" / "a.txt").read_text().split()[0] == "3"


def test_an_existing_output_folder_is_refused(tmp_path):
    data = make_voc(tmp_path / "voc", {"a": _xml([])})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="already exists and is not an empty folder"):
        convert_dataset(data, tmp_path / "out", ("train",))
    assert _snapshot(tmp_path / "out") == {"keep.txt": b"mine"}
