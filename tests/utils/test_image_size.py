"""utils/image_size.py: one rule for every command (round up to the largest stride; refuse what cannot fit)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from utils.boxes import NmsSettings
from utils.image_size import ImageSizeError, check_image_size


@pytest.mark.parametrize(("size", "stride", "expected"), [
    (100, 32, 128), (50, 32, 64), (330, 32, 352), (640, 32, 640), (1, 32, 32), (1000, 64, 1024),
    ((384, 650), 32, (384, 672)), ([100, 100], 32, (128, 128)),
])
def test_sizes_round_up_to_the_stride(size, stride, expected):
    assert check_image_size(size, stride) == expected


def test_a_change_is_one_note(caplog):
    with caplog.at_level(logging.INFO, logger="yolov5_spd"):
        check_image_size(100, 32, option="--imgsz")
    notes = [r.getMessage() for r in caplog.records if "rounded up" in r.getMessage()]
    assert notes == ["--imgsz 100 rounded up to 128, a multiple of the model's largest stride 32"]


@pytest.mark.parametrize("size", [0, -5, 3.5, True, (1, 2, 3)])
def test_impossible_sizes_are_refused(size):
    with pytest.raises(ImageSizeError, match="whole numbers >= 1"):
        check_image_size(size, 32)


def test_a_size_that_cannot_be_allocated_is_one_line_before_any_work():
    with pytest.raises(ImageSizeError, match=r"--imgsz 100000: a batch of 1 at 100000x100000 needs at least \d+ GiB"):
        check_image_size(100000, 32)


def test_detector_and_export_take_any_size(tmp_path):
    """detect.py --imgsz 100 and export.py --imgsz 50 crashed with a tensor-size error before the rule."""
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT
    from utils.deploy.exporters import export
    from utils.detection.prediction import Detector

    weights = tmp_path / "tiny.pt"
    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, weights)
    detector = Detector(weights, device="cpu", imgsz=100)
    assert detector.imgsz == (128, 128)
    detector.predict(np.full((90, 120, 3), 80, np.uint8))
    (script,) = export(weights=str(weights), include=["torchscript"], imgsz=50)
    assert torch.jit.load(str(script))(torch.zeros(1, 3, 64, 64)) is not None


def test_rectangular_sizes_for_detect_and_export(tmp_path):
    """--imgsz H W, as yolov5: each side rounded up to the stride; a static export keeps its (h, w)."""
    pytest.importorskip("onnxruntime")
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT
    from utils.deploy.exporters import export
    from utils.detection.prediction import Detector

    weights = tmp_path / "tiny.pt"
    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, weights)
    detector = Detector(weights, device="cpu", imgsz=(100, 200), nms=NmsSettings(0.0, None, None, multi_label=False))
    assert detector.imgsz == (128, 224)
    x, _ = detector._letterboxed([np.full((300, 300, 3), 80, np.uint8)])
    assert tuple(x.shape[2:]) == (128, 128)  # minimal padding inside the 128 x 224 box, as yolov5's auto mode
    (onnx_file,) = export(weights=str(weights), include=["onnx"], imgsz=[50, 100])
    static = Detector(onnx_file, device="cpu", nms=NmsSettings(0.0, None, None, multi_label=False))
    assert static.imgsz == (64, 128)
    found = static.predict(np.full((90, 120, 3), 80, np.uint8))[0]
    assert found.image_shape == (90, 120) and (found.xyxy[:, 2] <= 120).all()


def test_a_batch_that_does_not_fit_names_the_batch_size():
    from utils.engine.config import ConfigurationError, TrainConfig

    with pytest.raises(ConfigurationError, match=r"--batch-size 100000 with --imgsz 256: .* choose a smaller batch"):
        TrainConfig(batch_size=100000)
