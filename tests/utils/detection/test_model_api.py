"""utils/detection/model_api.py: the one model object's round trip through its methods (train one epoch at
64 px, val, predict, track, export), with ultralytics' option names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils.detection.model_api import YOLO
from utils.options import ConfigurationError


def test_round_trip_train_val_predict_track_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = YOLO("space_depth_n.yaml", device="cpu")
    assert model.weights is None and len(model.names) == 80 and "GFLOPs" in model.info(imgsz=64, verbose=False)
    with pytest.raises(ConfigurationError, match="untrained config"):
        model.val()
    untrained = model.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64)
    assert len(untrained) == 1
    result = model.train(data="smallobj.yaml", epochs=1, imgsz=64, batch=8, workers=0, plots=False,
                         project=str(tmp_path / "runs"))
    assert model.weights == Path(result["save_dir"]) / "weights" / "best.pt" and len(model.names) == 6
    assert not list(Path(result["save_dir"]).glob("*.png"))  # plots=False reached train.py's noplots
    metrics = model.val(imgsz=64, batch=8, workers=0, plots=False, project=str(tmp_path / "val"))
    assert {"P", "R", "mAP50", "mAP50_95"} <= metrics.keys() and "AP_S" in metrics["coco"] and metrics["images"] > 0
    source = Path(__file__).resolve().parents[3] / "data" / "images"
    found = model.predict(source, imgsz=64, conf=0.001)
    assert found and all(r.boxes.xyxy.shape[1] == 4 for r in found)
    with pytest.raises(ConfigurationError, match="YOLO.predict: unknown option 'epoch'"):
        model.predict(source, epoch=3)
    tracked = model.track([source / p.name for p in sorted(source.glob("*.jpg"))], imgsz=64, conf=0.001)
    assert all(r.track_ids is not None for r in tracked)
    pytest.importorskip("onnx")
    written = model.export(format="onnx", imgsz=64)
    assert Path(written).suffix == ".onnx" and Path(written).is_file()
    assert YOLO(written).predict(source, imgsz=64)[0].path


def test_a_yolov5_checkpoint_gives_the_detectors_raw_boxes_through_the_object(yolov5n_weights, shared):
    import torch

    from utils.detection.prediction import Detector

    model = YOLO(str(yolov5n_weights), device="cpu")
    assert len(model.names) == 80 and model.names[0] == "person" and model.is_pytorch
    image = shared / "images" / "bus.jpg"
    result = model.predict(image, imgsz=640)[0]
    import cv2

    raw = Detector(yolov5n_weights, device="cpu", imgsz=640).predict_tensors(cv2.imread(str(image)))[1]
    assert torch.allclose(result.boxes.data, raw.float(), atol=1e-3)  # x1 y1 x2 y2 conf cls, row for row
    assert result.boxes.cls.tolist() == raw[:, 5].tolist() and result.path == str(image)
    assert {result.names[int(c)] for c in result.boxes.cls} >= {"person", "bus"}
