"""utils/detection/prediction.py: streaming frame by frame, ensembles, test-time augmentation, batches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from utils.detection.prediction import Detector


@pytest.fixture(scope="module")
def detector(yolov5n_weights):
    return Detector(yolov5n_weights, device="cpu", imgsz=320)


@pytest.fixture(scope="module")
def clip(shared, tmp_path_factory):
    frame = cv2.resize(cv2.imread(str(shared / "images" / "bus.jpg")), (320, 416))
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 416))
    for _ in range(4):
        writer.write(frame)
    writer.release()
    return path


def test_videos_stream_frame_by_frame(detector, clip):
    stream = detector(clip, stream=True)
    first = next(stream)  # lazily: one frame read and detected
    assert first.frame == 0 and first.image is not None and first.plot().shape == (416, 320, 3)
    rest = list(stream)
    assert [d.frame for d in rest] == [1, 2, 3]
    listed = detector(clip)
    assert len(listed) == 4 and all(d.image is None for d in listed)  # a list never holds the frames
    assert np.allclose(listed[0].xyxy, first.xyxy) and len(first) > 0


def test_an_ensemble_of_a_model_with_itself_changes_nothing(yolov5n_weights, shared, detector):
    twice = Detector([yolov5n_weights, yolov5n_weights], device="cpu", imgsz=320)
    image = shared / "images" / "zidane.jpg"
    one, two = detector(image)[0], twice(image)[0]
    assert len(one) == len(two) and np.allclose(one.xyxy, two.xyxy, atol=1e-3)  # NMS drops the copies


def test_ensemble_members_must_share_their_classes(yolov5n_weights, tmp_path):
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    other = DetectionModel("yolov5n.yaml", nc=2)
    other.names = ["a", "b"]
    path = save_checkpoint({"format": FORMAT, "model": model_payload(other), "epoch": 0}, tmp_path / "two.pt")
    with pytest.raises(ValueError, match="same class list"):
        Detector([yolov5n_weights, path], device="cpu")


def test_test_time_augmentation_finds_the_same_objects(yolov5n_weights, shared, detector):
    augmented = Detector(yolov5n_weights, device="cpu", imgsz=320, augment=True)
    image = shared / "images" / "bus.jpg"
    plain, tta = detector(image)[0], augmented(image)[0]
    assert set(plain.names_of()) <= set(tta.names_of()) and not np.array_equal(plain.scores, tta.scores)


def test_a_batch_of_frames_equals_frames_one_by_one(detector, shared):
    image = cv2.imread(str(shared / "images" / "zidane.jpg"))
    batch = detector._run_batch([image, image[:, ::-1].copy()])
    single = [detector._run(image), detector._run(image[:, ::-1].copy())]
    for b, s in zip(batch, single):
        assert b.shape == s.shape and torch.allclose(b, s, atol=1e-2)


def test_the_pixel_limit_is_the_detectors_own(yolov5n_weights, shared):
    """--max-pixels travels with the detector: one detector's limit never reaches another."""
    strict = Detector(yolov5n_weights, device="cpu", imgsz=320)
    strict.max_pixels = 1000
    with pytest.raises(ValueError, match="over the limit of 1,000"):
        strict(shared / "images" / "bus.jpg")
    assert len(Detector(yolov5n_weights, device="cpu", imgsz=320)(shared / "images" / "bus.jpg")) == 1


def test_the_api_checks_slices_as_the_command_line_does(yolov5n_weights):
    import pytest

    from utils.options import ConfigurationError

    detector = Detector(yolov5n_weights, device="cpu", imgsz=320)
    image = np.zeros((200, 200, 3), np.uint8)
    for tile_hw, overlap in (((0, 0), 0.2), ((64, 64), -0.5), ((64, 64), float("nan"))):
        with pytest.raises(ConfigurationError, match="--slice"):
            detector.predict_one(image, slice_hw=tile_hw, overlap=overlap)
