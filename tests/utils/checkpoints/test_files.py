import hashlib
import json
import os

import numpy as np
import pytest
import torch

from models.loading import load_model
from models.yolo import DetectionModel
from utils.checkpoints.files import convert_checkpoint, load_checkpoint, model_payload, save_checkpoint
from utils.checkpoints.format import FORMAT, CheckpointError

OFFICIAL_SHA256 = "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3"


def test_round_trip_is_weights_only_loadable(tmp_path):
    model = DetectionModel("space_depth_n.yaml", nc=4)
    model.names = ["a", "b", "c", "d"]
    path = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 3}, tmp_path / "x.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["epoch"] == 3
    loaded = load_model(path)
    assert loaded.names == model.names
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=False):
        assert torch.equal(a, b), k
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = save_checkpoint({"format": FORMAT, "model": {}, "epoch": 1}, tmp_path / "last.pt")

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint({"format": FORMAT, "bad": Unsaveable()}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED_MARKER",))


def test_malicious_pickle_is_refused_without_side_effect(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"model": _Exploit()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "evil.pt" in message and "refused" in message and "\n" not in message
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_exploit_disguised_as_yolov5_model_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class Model:  # pretends to be models.yolo.Model, but smuggles a call in its state
        def __reduce__(self):
            return (eval, ("__import__('os').system('touch PWNED_MARKER')",))

    Model.__module__, Model.__qualname__ = "models.yolo", "Model"
    path = tmp_path / "evil2.pt"
    with open(path, "wb") as f:
        torch.save({"model": Model()}, f)
    with pytest.raises(CheckpointError, match="builtins.eval"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "absent.pt")


def test_official_yolov5n_matches_reference_vector(yolov5n_weights, shared):
    assert hashlib.sha256(yolov5n_weights.read_bytes()).hexdigest() == OFFICIAL_SHA256
    ref = json.loads((shared / "reference" / "yolov5n_test_vector.json").read_text())
    model = load_model(yolov5n_weights)
    assert len(model.state_dict()) == 349 and len(model.names) == 80 and model.names[0] == "person"
    x = (torch.arange(3 * 640 * 640) % 256).float().div(255).reshape(1, 3, 640, 640)
    with torch.no_grad():
        y = model(x)
    assert list(y.shape) == ref["shape"]
    assert y.sum().item() == pytest.approx(ref["sum"], rel=1e-4)
    for got, want in [(y[0, 0, :6], ref["first_row_0_6"]), (y[0, -1, :6], ref["last_row_0_6"])]:
        for g, w in zip(got.tolist(), want, strict=False):
            assert g == pytest.approx(w, rel=1e-3, abs=1e-5)


def test_converted_yolov5n_loads_weights_only(yolov5n_weights, tmp_path):
    out = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n_converted.pt")
    raw = torch.load(out, weights_only=True)
    assert raw["format"] == FORMAT and raw["model"]["names"][0] == "person"
    assert load_model(out).nc == 80


def _saved(tmp_path, mutate=None, name="m.pt"):
    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    payload = {"format": FORMAT, "model": model_payload(model), "epoch": 0}
    if mutate:
        mutate(payload)
    return save_checkpoint(payload, tmp_path / name)


def test_flipped_bytes_fail_the_crc_check(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        load_model(path)


def test_non_finite_weights_are_refused(tmp_path):
    def poison(payload):
        payload["model"]["state_dict"]["model.0.conv.weight"][0, 0, 0, 0] = float("nan")

    with pytest.raises(CheckpointError, match="model.0.conv.weight holds NaN"):
        load_model(_saved(tmp_path, poison))


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["model"].update(names=["a", "b", "c"]), "3 class names for a model with 2 classes"),
    (lambda p: p["model"]["config"].update(width_multiple=400), "'width_multiple' must be a number"),
    (lambda p: p["model"].update(config="yolov5n.yaml"), "config is a str"),
])
def test_inconsistent_checkpoints_are_one_clear_error(tmp_path, mutate, message):
    with pytest.raises(CheckpointError, match=message):
        load_model(_saved(tmp_path, mutate))


def test_checkpoints_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = _saved(tmp_path)
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_disk_full_is_one_line_and_leaves_the_old_file(tmp_path, monkeypatch):
    import errno

    path = _saved(tmp_path)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=f"No space left on device: {path}"):
        _saved(tmp_path)
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_a_checkpoint_of_the_other_task_is_one_line_everywhere(tmp_path, capsys):
    import detect
    import export
    import val
    from classify import predict
    from models.classification import ClassificationModel

    classifier = ClassificationModel("resnet18_spd.yaml", nc=3)
    classifier.names = ["a", "b", "c"]
    cls_pt = save_checkpoint({"format": FORMAT, "model": model_payload(classifier), "epoch": 0}, tmp_path / "cls.pt")
    detector = DetectionModel("yolov5n.yaml", nc=2)
    detector.names = ["a", "b"]
    det_pt = save_checkpoint({"format": FORMAT, "model": model_payload(detector), "epoch": 0}, tmp_path / "det.pt")
    image = tmp_path / "x.jpg"
    __import__("cv2").imwrite(str(image), np.full((64, 64, 3), 90, np.uint8))
    runs = [(detect.main, ["--weights", str(cls_pt), "--source", str(image), "--project", str(tmp_path / "d")]),
            (val.main, ["--weights", str(cls_pt), "--project", str(tmp_path / "v")]),
            (export.main, ["--weights", str(cls_pt), "--include", "torchscript"]),
            (predict.main, ["--weights", str(det_pt), "--source", str(image), "--project", str(tmp_path / "p")])]
    for main, argv in runs:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = (str(stop.value.code) if isinstance(stop.value.code, str) else capsys.readouterr().err).strip()
        assert "\n" not in err and "checkpoint, but" in err and "need a" in err, (main, err)
    assert not any((tmp_path / d).exists() for d in ("d", "v", "p"))  # no empty output folders


def test_weights_that_are_not_regular_files_are_named_for_what_they_are(tmp_path):
    import os

    import pytest

    from utils.checkpoints.files import resolve_weights
    from utils.checkpoints.format import CheckpointError

    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="not a regular file"):
        resolve_weights(str(fifo))  # never opened: reading a FIFO would wait forever
    with pytest.raises(CheckpointError, match="not a regular file"):
        resolve_weights("/dev/zero")
    with pytest.raises(CheckpointError, match="a folder"):
        resolve_weights(str(tmp_path))
    with pytest.raises(CheckpointError, match="not found"):
        resolve_weights(str(tmp_path / "missing.pt"))
