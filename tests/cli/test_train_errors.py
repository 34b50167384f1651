"""train.py on user mistakes: one line, a non-zero exit, no traceback, no run folder left behind."""

import pytest
import torch

import train
from models.yolo import DetectionModel
from utils.checkpoints.files import model_payload, save_checkpoint
from utils.checkpoints.format import FORMAT


@pytest.fixture(autouse=True)
def no_memory_tuning(monkeypatch, tmp_path):
    import utils.memory

    monkeypatch.setattr(utils.memory, "keep_freed_memory", lambda: None)
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))


def _fails(argv, tmp_path, capsys, message):
    project = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_info:
        train.main([*argv, "--project", str(project), "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code not in (0, None)
    assert err and err[-1].startswith("error: ") and message in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not project.exists() or not any(project.iterdir()), list(project.rglob("*"))


def _slim(tmp_path):
    model = DetectionModel("yolov5n.yaml", nc=6)
    model.names = [str(i) for i in range(6)]
    return save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 3}, tmp_path / "best.pt")


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--imgsz", "-1"], "--imgsz must be one or two whole numbers >= 1"),
    (["--imgsz", "100000"], "--imgsz 100000: a batch of 16 at 100000x100000 needs at least"),
    (["--batch-size", "-1"], "(AutoBatch) needs a CUDA GPU"),
    (["--weights", "nope.pt"], "nope.pt"),
    (["--resume", "/nonexistent/last.pt"], "no such checkpoint file"),
    (["--freeze", "1000", "--epochs", "1"], "the model has 31 layers"),
])
def test_option_mistakes(argv, message, tiny_data, tmp_path, capsys):
    _fails(["--data", str(tiny_data), *argv], tmp_path, capsys, message)


def test_resume_from_a_slim_checkpoint_points_at_last(tiny_data, tmp_path, capsys):
    _fails(["--data", str(tiny_data), "--resume", str(_slim(tmp_path))], tmp_path, capsys, "weights/last.pt")


def test_empty_and_evil_files(tiny_data, tmp_path, capsys):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _fails(["--data", str(tiny_data), "--resume", str(empty)], tmp_path, capsys, "empty.pt")
    evil = tmp_path / "evil.pt"
    torch.save({"x": __import__("collections").Counter()}, evil)
    _fails(["--data", str(tiny_data), "--weights", str(evil)], tmp_path, capsys, "evil.pt")


@pytest.mark.parametrize("text, message", [
    ("lr0: 0.01\n", "missing hyper-parameters"),
    ("lr_0: 0.01\n", "unknown hyper-parameter 'lr_0' (did you mean 'lr0'?)"),
    ("a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
     "aliases (*name) are not allowed"),
])
def test_bad_hyp_files(text, message, tiny_data, tmp_path, capsys):
    hyp = tmp_path / "hyp.bad.yaml"
    hyp.write_text(text)
    _fails(["--data", str(tiny_data), "--hyp", str(hyp)], tmp_path, capsys, message)


def test_hyp_typo_in_a_full_file_names_the_key(tiny_data, tmp_path, capsys):
    from pathlib import Path

    text = (Path(train.__file__).parent / "configs" / "hyp.quick.yaml").read_text().replace("mosaic:", "mosiac:")
    hyp = tmp_path / "hyp.typo.yaml"
    hyp.write_text(text)
    _fails(["--data", str(tiny_data), "--hyp", str(hyp)], tmp_path, capsys, "'mosiac' (did you mean 'mosaic'?)")


@pytest.mark.parametrize(("where", "extra"), [("project", []), ("project", ["--exist-ok"]),
                                               ("name", ["--exist-ok"])])
def test_project_or_name_naming_a_file_is_one_line(tiny_data, tmp_path, capsys, where, extra):
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    place = ["--project", str(blocker)] if where == "project" else ["--project", str(tmp_path), "--name", "afile"]
    with pytest.raises(SystemExit) as stop:
        train.main(["--data", str(tiny_data), *place, *extra, "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and err[-1].startswith("error: ") and "is a file, not a folder" in err[-1], err
    assert blocker.read_text() == "mine"
