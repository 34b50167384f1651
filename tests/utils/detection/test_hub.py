"""utils/detection/hub.py: yolov5's hub idioms behave here, and a setting with no effect is an error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from utils.boxes import NmsSettings
from utils.detection.hub import HubModel
from utils.detection.prediction import Detector


@pytest.fixture(scope="module")
def hub(yolov5n_weights):
    return HubModel(Detector(yolov5n_weights, device="cpu", imgsz=640))


def test_rgb_arrays_are_read_as_yolov5s_hub_reads_them(hub, shared, yolov5n_weights):
    path = shared / "images" / "zidane.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    from_file, from_rgb = hub([path, rgb])
    assert from_file.scores.max() == pytest.approx(from_rgb.scores.max(), abs=1e-4)
    assert from_file.scores.max() > 0.75  # read as BGR it would score about 0.62


def test_attributes_act_and_unknown_ones_are_errors(hub, shared):
    image = shared / "images" / "bus.jpg"
    everything = hub(image)[0]
    hub.conf = 0.85
    try:
        confident = hub(image)[0]
    finally:
        hub.conf = 0.25
    assert 0 < len(confident) < len(everything) and (confident.scores >= 0.85).all()
    hub.classes = [0]
    try:
        people = hub(image)[0]
    finally:
        hub.classes = None
    assert set(people.names_of()) == {"person"}
    hub.max_det = 2
    try:
        assert len(hub(image)[0]) == 2
    finally:
        hub.max_det = 1000
    with pytest.raises(AttributeError, match="no effect"):
        hub.multi_label = True
    with pytest.raises(ValueError, match="classes"):
        hub.classes = [99]


def test_size_and_results_accessors(hub, shared, tmp_path):
    image = shared / "images" / "bus.jpg"
    small = hub(image, size=320)
    assert hub.detector.imgsz == (640, 640)  # the call's size does not stick
    assert small.xyxy[0].shape[1] == 6 and (small.xywhn[0][:, :4] <= 1).all()
    assert "person" in str(small)
    folder = small.save(tmp_path / "exp")
    assert (folder / "bus.jpg").is_file()
    crops = small.crop(save=True, save_dir=tmp_path / "crops")
    assert crops and all(c["file"].is_file() and c["im"].size and c["label"].split()[0] in small.names
                         for c in crops)
    with pytest.raises(TypeError, match="size= and augment="):
        hub(image, imgsz=320)


def test_hub_and_detector_refuse_max_det_below_one(tmp_path):
    import pytest

    import hubconf
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT
    from utils.detection.prediction import Detector

    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    save_checkpoint({"format": FORMAT, "model": model_payload(model), "ema": None, "epoch": 0}, tmp_path / "m.pt")
    hub = hubconf.custom(path=str(tmp_path / "m.pt"), imgsz=64)
    with pytest.raises(ValueError, match="max_det"):
        hub.max_det = -1
    hub.max_det = 5
    assert hub.max_det == 5
    with pytest.raises(ValueError, match="max_det"):
        Detector(tmp_path / "m.pt", imgsz=64, nms=NmsSettings(max_det=0))


def test_hub_settings_given_as_text_are_refused(hub):
    saved = hub.conf, hub.iou
    for name, value in (("conf", "0.5"), ("iou", 1.5), ("conf", float("nan")), ("agnostic", "no"),
                        ("classes", "car"), ("classes", [0.5])):
        with pytest.raises(ValueError, match=f"model.{name}"):
            setattr(hub, name, value)
    hub.conf, hub.iou, hub.agnostic, hub.classes = 0.4, 0.5, True, [0, 2]
    assert (hub.conf, hub.iou, hub.agnostic, hub.classes) == (0.4, 0.5, True, [0, 2])
    hub.agnostic, hub.classes = False, None
    hub.conf, hub.iou = saved


def test_pandas_tables_have_yolov5s_hub_columns(hub, shared):
    pandas = pytest.importorskip("pandas")
    results = hub([shared / "images" / "bus.jpg", shared / "images" / "zidane.jpg"])
    tables = results.pandas()
    corner = tables.xyxy[0]
    assert isinstance(corner, pandas.DataFrame)
    assert list(corner.columns) == ["xmin", "ymin", "xmax", "ymax", "confidence", "class", "name"]
    assert list(tables.xywhn[1].columns) == ["xcenter", "ycenter", "width", "height", "confidence", "class", "name"]
    assert len(corner) == len(results[0]) and corner["confidence"].tolist() == pytest.approx(results[0].scores)
    assert corner["name"].tolist() == results[0].names_of() and (tables.xyxyn[0][["xmin", "xmax"]] <= 1).all().all()
    parts = results.tolist()
    assert len(parts) == 2 and len(parts[1]) == 1 and len(parts[1][0]) == len(results[1])


def test_named_entry_points_build_their_config_from_local_weights_only(yolov5n_weights, tmp_path, monkeypatch):
    import hubconf
    from utils.checkpoints.format import CheckpointError

    monkeypatch.chdir(tmp_path)
    model = hubconf.yolov5n(weights=str(yolov5n_weights), device="cpu", imgsz=320)
    assert len(model.names) == 80 and model.detector.imgsz == (320, 320)
    with pytest.raises(CheckpointError, match="not a space_depth_n model"):
        hubconf.space_depth_n(weights=str(yolov5n_weights), device="cpu")
    with pytest.raises(CheckpointError, match="never downloaded"):
        hubconf.yolov5n(device="cpu")
    untrained = hubconf.space_depth_n(pretrained=False, classes=3, device="cpu", imgsz=64)
    assert untrained.names == ["0", "1", "2"] and len(untrained(np.zeros((64, 64, 3), np.uint8))) == 1


def test_torch_hub_load_finds_the_named_entry_points(yolov5n_weights):
    import torch

    root = Path(__file__).resolve().parents[3]
    model = torch.hub.load(str(root), "yolov5n", source="local", weights=str(yolov5n_weights), device="cpu",
                           imgsz=320)
    assert len(model.names) == 80 and model.detector.imgsz == (320, 320)
    import hubconf

    assert all(callable(getattr(hubconf, name)) for name in ("custom", "space_depth_s", "yolov8n", "yolo11s"))
