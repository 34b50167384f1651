"""utils/detection/results.py: box forms computed by hand, one set of field names in every table form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from utils.detection.results import TABLE_COLUMNS, Detections


@pytest.fixture
def det() -> Detections:
    image = np.full((100, 200, 3), 90, np.uint8)
    return Detections(np.array([[10.0, 20, 50, 60], [100, 0, 200, 100]], np.float32), np.array([0.9, 0.4]),
                      np.array([1, 0]), ["cat", "dog"], (100, 200), "/data/pic.jpg", None, image)


def test_box_forms(det):
    assert np.allclose(det.xywh[0], [30, 40, 40, 40]) and np.allclose(det.xywh[1], [150, 50, 100, 100])
    assert np.allclose(det.xyxyn[1], [0.5, 0, 1, 1]) and np.allclose(det.xywhn[0], [0.15, 0.4, 0.2, 0.4])
    assert det.names_of() == ["dog", "cat"] and det.summary() == "1 cat, 1 dog"


def test_records_json_and_tables_share_the_field_names(det):
    records = det.to_records()
    assert records[0] == {"file": "pic.jpg", "source": "/data/pic.jpg", "frame": None, "class_id": 1,
                          "class": "dog", "conf": 0.9, "xyxy": [10, 20, 50, 60], "xywhn": [0.15, 0.4, 0.2, 0.4]}
    assert json.loads(det.to_json()) == records
    rows = det.to_rows()
    assert list(rows[0]) == TABLE_COLUMNS and rows[1]["x2"] == 200 and rows[1]["cx"] == 0.75
    lines = det.to_csv().splitlines()
    assert lines[0].split(",") == TABLE_COLUMNS and len(lines) == 3
    shared = set(records[0]) - {"xyxy", "xywhn"}
    assert shared <= set(TABLE_COLUMNS)
    try:
        import pandas
    except ImportError:
        with pytest.raises(ImportError, match="to_csv"):
            det.to_df()
        return
    frame = det.to_df()
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == TABLE_COLUMNS and len(frame) == 2


def test_plot_save_and_crop(det, tmp_path):
    annotated = det.plot()
    assert annotated.shape == det.image.shape and not np.array_equal(annotated, det.image)
    assert (det.image == 90).all()  # the original is untouched
    assert det.save(tmp_path / "out.jpg").is_file()
    crops = det.crop(tmp_path / "crops")
    assert sorted(p.parent.name for p in crops) == ["cat", "dog"]
    import cv2

    assert cv2.imread(str(crops[0])).shape[:2] == (40, 40)
    with pytest.raises(ValueError, match="suffix"):
        det.save(tmp_path / "out.notanimage")


def test_a_frame_without_its_image_says_how_to_get_it(det):
    det.image, det.frame = None, 7
    with pytest.raises(ValueError, match="stream=True"):
        det.plot()
    assert det.to_records()[0]["frame"] == 7 and "frame 7" in repr(det)


def test_boxes_give_ultralytics_tensors_equal_to_the_arrays(det):
    import torch

    boxes = det.boxes
    assert isinstance(boxes.xyxy, torch.Tensor) and torch.allclose(boxes.xyxy, torch.as_tensor(det.xyxy))
    assert torch.allclose(boxes.xywh, torch.as_tensor(det.xywh)) and torch.allclose(boxes.xywhn,
                                                                                      torch.as_tensor(det.xywhn))
    assert torch.allclose(boxes.xyxyn, torch.as_tensor(det.xyxyn))
    assert boxes.conf.tolist() == pytest.approx([0.9, 0.4]) and boxes.cls.tolist() == [1.0, 0.0]
    assert boxes.id is None and not boxes.is_track and boxes.data.shape == (2, 6) and len(boxes) == 2
    first = boxes[0]
    assert first.xyxy.shape == (1, 4) and first.cls.item() == 1.0
    assert [b.conf.item() for b in boxes] == pytest.approx([0.9, 0.4])
    assert det.orig_img is det.image and det.orig_shape == (100, 200) and det.path == "/data/pic.jpg"
    assert det.verbose() == "1 cat, 1 dog, "


def test_track_ids_reach_boxes_records_and_tables(det):
    det.track_ids = np.array([7, 3])
    assert det.boxes.is_track and det.boxes.id.tolist() == [7.0, 3.0] and det.boxes.data.shape == (2, 7)
    assert det.boxes.conf.tolist() == pytest.approx([0.9, 0.4]) and det.boxes.cls.tolist() == [1.0, 0.0]
    assert [r["track_id"] for r in det.to_records()] == [7, 3]
    header = det.to_csv().splitlines()[0].split(",")
    assert header[header.index("conf") + 1] == "track_id"
    assert not np.array_equal(det.plot(), det.image)


def test_save_txt_and_show_without_a_display(det, tmp_path, monkeypatch):
    path = det.save_txt(tmp_path / "labels" / "pic.txt", save_conf=True)
    rows = [line.split() for line in path.read_text().splitlines()]
    assert rows[0][0] == "1" and [float(v) for v in rows[0][1:5]] == pytest.approx([0.15, 0.4, 0.2, 0.4])
    assert float(rows[0][5]) == pytest.approx(0.9, abs=1e-3)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    from utils.detection import display

    monkeypatch.setattr(display, "_PROBED", {})
    said = []
    monkeypatch.setattr(display.LOGGER, "info", said.append)  # the line, whatever the logging set-up
    assert det.show() is False
    assert len(said) == 1 and "no display" in said[0]
    assert [p.parent.name for p in det.save_crop(tmp_path / "crops", "x.jpg")] == ["dog", "cat"]


def test_plot_takes_ultralytics_keywords(det):
    assert np.array_equal(det.plot(line_width=4, conf=False), det.plot(thickness=4, hide_conf=True))
    assert np.array_equal(det.plot(labels=False), det.plot(hide_labels=True))
    assert not np.array_equal(det.plot(labels=False), det.plot())
