import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import detect
from utils.data.tiles import tile_origins
from utils.detection.prediction import Detector


@pytest.fixture(scope="module")
def detector(yolov5n_weights):
    return Detector(yolov5n_weights, device="cpu", imgsz=640)


@pytest.mark.parametrize("image", ["bus.jpg", "zidane.jpg", "small-vehicles1.jpeg"])
def test_detections_match_reference(detector, shared, image):
    reference = json.loads((shared / "reference" / "yolov5n_detect_640.json").read_text())["detections"][image]
    det = detector.predict(shared / "images" / image)[0]
    ours: dict[str, list[float]] = {}
    for row in det.to_list():
        ours.setdefault(row["class"], []).append(row["conf"])
    theirs: dict[str, list[float]] = {}
    for row in reference:
        theirs.setdefault(row["class"], []).append(row["conf"])
    assert {k: len(v) for k, v in ours.items()} == {k: len(v) for k, v in theirs.items()}
    for cls in theirs:
        assert np.allclose(sorted(ours[cls]), sorted(theirs[cls]), atol=0.02), cls


def test_api_accepts_arrays_and_lists(detector, shared):
    image = cv2.imread(str(shared / "images" / "zidane.jpg"))
    from_array, from_path = detector.predict([image, shared / "images" / "zidane.jpg"])
    assert np.allclose(from_array.xyxy, from_path.xyxy)
    assert from_array.image_shape == image.shape[:2]
    assert (from_array.xyxy[:, 2] <= image.shape[1]).all()


def test_slicing_merges_tiles(detector, shared):
    full = detector.predict(shared / "images" / "small-vehicles1.jpeg")[0]
    sliced = detector.predict(shared / "images" / "small-vehicles1.jpeg", slice_hw=(320, 320), overlap=0.2)[0]
    assert len(sliced) >= len(full)


def test_tile_origins_cover_the_image():
    assert tile_origins(100, 40, 0.25) == [0, 30, 60]
    assert tile_origins(30, 40, 0.2) == [0]


def test_detect_cli_writes_outputs_and_skips_bad_files(yolov5n_weights, shared, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bus.jpg").write_bytes((shared / "images" / "bus.jpg").read_bytes())
    (folder / "broken.jpg").write_text("not an image")
    results = detect.run(weights=str(yolov5n_weights), source=str(folder), project=str(tmp_path / "out"),
                         save_txt=True, save_json=True, save_crop=True, device="cpu")
    assert len(results) == 1
    out = tmp_path / "out" / "exp"
    assert (out / "bus.jpg").is_file() and (out / "labels" / "bus.txt").is_file()
    assert json.loads((out / "predictions.json").read_text())[0]["file"] == "bus.jpg"
    assert (out / "crops" / "person").is_dir()


def test_detect_without_model_says_what_to_do(monkeypatch, tmp_path):
    import utils.detection.prediction as inference

    monkeypatch.setattr(inference, "newest_trained_weights", lambda: None)
    with pytest.raises(Exception, match="python train.py"):
        detect.run(source=str(tmp_path))


def test_detect_on_a_video_writes_an_annotated_video(yolov5n_weights, shared, tmp_path, caplog):
    caplog.set_level("INFO")
    frame = cv2.resize(cv2.imread(str(shared / "images" / "bus.jpg")), (320, 416))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 416))
    for _ in range(4):
        writer.write(frame)
    writer.release()
    results = detect.run(weights=str(yolov5n_weights), source=str(video), project=str(tmp_path / "out"), imgsz=320,
                         vid_stride=2, device="cpu", save_txt=True, save_json=True, save_crop=True, view_img=True)
    assert [r.frame for r in results] == [0, 2]
    records = json.loads((tmp_path / "out" / "exp" / "predictions.json").read_text())
    assert {r["frame"] for r in records} == {0, 2} and records[0]["file"] == "clip.mp4"
    crops = sorted(p.name for p in (tmp_path / "out" / "exp" / "crops").rglob("*.jpg"))
    assert crops and all(name.startswith(("clip_1_", "clip_3_")) for name in crops)
    log = caplog.text
    assert "0 images, 2 video/stream frames done" in log
    if "DISPLAY" not in os.environ:
        assert "--view-img: no display here" in log
    out = cv2.VideoCapture(str(tmp_path / "out" / "exp" / "clip.mp4"))
    frames = 0
    while out.read()[0]:
        frames += 1
    assert frames == 2
    labels = sorted(p.name for p in (tmp_path / "out" / "exp" / "labels").iterdir())
    assert labels == ["clip_1.txt", "clip_3.txt"]  # yolov5's naming: 1-based frame numbers


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "..", "a\\b", "\x00", ""])
def test_class_names_never_leave_the_folder(name, tmp_path):
    from utils.paths import safe_path_component

    component = safe_path_component(name)
    target = (tmp_path / component).resolve()
    assert target.parent == tmp_path.resolve() and component not in ("", ".", "..")


def test_tile_merge_keeps_classes_apart_anywhere_on_a_large_image(monkeypatch):
    """Two classes far apart never suppress each other (a fixed class offset let (8000, 8000) hit (320, 320))."""
    import torch

    detector = Detector.__new__(Detector)
    detector.agnostic, detector.iou_thres, detector.max_det, detector.names = False, 0.45, 100, ["a", "b"]
    boxes = torch.tensor([[8000.0, 8000, 8100, 8100, 0.9, 0], [320, 320, 420, 420, 0.8, 1]])
    monkeypatch.setattr(Detector, "_run", lambda self, image: boxes.clone() if image.shape[0] == 9000
                        else torch.zeros((0, 6)))
    found = detector.predict_one(np.zeros((9000, 9000, 3), np.uint8), slice_hw=(4500, 4500), overlap=0.0)
    assert sorted(found.classes.tolist()) == [0, 1]


def test_torch_hub_custom_loads_through_the_safe_reader(tmp_path):
    import torch

    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, tmp_path / "best.pt")
    root = str(Path(detect.__file__).resolve().parent)
    hub_model = torch.hub.load(root, "custom", path=str(weights), source="local", conf=0.0)
    found = hub_model(np.full((96, 128, 3), 114, np.uint8))
    assert len(found) == 1 and found[0].image_shape == (96, 128) and hub_model.names == ["a", "b"]


def test_detect_handles_a_one_pixel_strip_and_refuses_an_empty_folder(tmp_path):
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    model = DetectionModel("yolov5n.yaml", nc=1)
    model.names = ["a"]
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, tmp_path / "m.pt")
    images = tmp_path / "imgs"
    images.mkdir()
    cv2.imwrite(str(images / "strip.png"), np.full((1, 3000, 3), 100, np.uint8))
    found = detect.run(weights=str(weights), source=str(images), project=str(tmp_path / "out"), imgsz=64)
    assert len(found) == 1 and found[0].image_shape == (1, 3000)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images or videos found"):
        detect.run(weights=str(weights), source=str(tmp_path / "empty"), project=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="--slice needs tiles"):
        detect.run(weights=str(weights), source=str(images), slice_hw=[0, 0])


def test_unreadable_video_is_counted_and_classes_outside_the_model_are_refused(tmp_path, caplog):
    import logging

    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, tmp_path / "m.pt")
    source = tmp_path / "src"
    source.mkdir()
    cv2.imwrite(str(source / "a.jpg"), np.full((64, 64, 3), 90, np.uint8))
    (source / "broken.mp4").write_text("not a video")
    with caplog.at_level(logging.INFO, logger="yolov5_spd"):
        detect.run(weights=str(weights), source=str(source), imgsz=64, project=str(tmp_path / "out"))
    summary = [r.getMessage() for r in caplog.records if "done" in r.getMessage()][-1]
    assert summary.startswith("1 images done, 1 unreadable files skipped")
    with pytest.raises(ValueError, match=r"--classes 7: .* has classes 0..1 \(a, b\); \[7\] not among them"):
        detect.run(weights=str(weights), source=str(source), imgsz=64, classes=[7], project=str(tmp_path / "o2"))


def test_detect_track_keeps_ids_through_a_pan_and_writes_mot_rows(yolov5n_weights, shared, tmp_path):
    image = cv2.imread(str(shared / "images" / "bus.jpg"))
    video = tmp_path / "pan.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for f in range(8):  # the camera pans 8 px per frame over the two people at the front
        writer.write(np.ascontiguousarray(image[100:580, 20 + 8 * f:660 + 8 * f]))
    writer.release()
    detect.main(["--weights", str(yolov5n_weights), "--source", str(video), "--track", "botsort", "--classes", "0",
                 "--conf-thres", "0.5", "--project", str(tmp_path / "runs"), "--name", "t", "--imgsz", "640"])
    rows = [line.split(",") for line in (tmp_path / "runs" / "t" / "tracks" / "pan.txt").read_text().splitlines()]
    by_frame: dict[int, set[int]] = {}
    for row in rows:
        assert len(row) == 10 and row[7:] == ["-1", "-1", "-1"]
        by_frame.setdefault(int(row[0]), set()).add(int(row[1]))
    assert sorted(by_frame) == list(range(1, 9)) and all(ids == {1, 2} for ids in by_frame.values()), by_frame
    assert (tmp_path / "runs" / "t" / "pan.mp4").is_file()


def test_a_read_only_project_folder_is_one_line(yolov5n_weights, shared, tmp_path, monkeypatch, capsys):
    import errno

    read_only = tmp_path / "ro"
    original = Path.mkdir

    def mkdir(self, *args, **kwargs):  # the file system refuses every folder under ro/, as a read-only mount
        if read_only in (self, *self.parents):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(SystemExit) as stop:
        detect.main(["--weights", str(yolov5n_weights), "--source", str(shared / "images" / "bus.jpg"),
                     "--project", str(read_only), "--imgsz", "320"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and err == [f"error: {read_only / 'exp'}: Read-only file system"]
