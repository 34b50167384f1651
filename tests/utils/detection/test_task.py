"""Detection training end to end (utils/detection/task.py on the engine): outputs, resume, signals, DDP."""

import csv
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import train
from models.loading import load_model
from models.yolo import DetectionModel


def _args(tiny_data, project, *extra):
    return train.parse_args(["--data", str(tiny_data), "--imgsz", "64", "--batch-size", "4", "--workers", "0",
                             "--project", str(project), "--device", "cpu", *extra])


def test_smoke_train_validate_save_resume(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    result = train.train(_args(tiny_data, tmp_path, "--epochs", "1", "--cfg", "space_depth_n.yaml", "--val-first"))
    run = tmp_path / "exp"
    assert result["save_dir"] == str(run)
    for name in ("results.csv", "results.png", "labels.jpg", "train_batch0.jpg", "hyp.yaml", "opt.yaml"):
        assert (run / name).is_file(), name
    last = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert last["epoch"] == 0 and last["optimizer"] is None and last["finished"] and last["ema"]
    best = torch.load(run / "weights" / "best.pt", weights_only=True)
    assert best.get("optimizer") is None and best["versions"]["torch"]
    assert next(iter(best["model"]["state_dict"].values())).dtype == torch.float16
    assert load_model(run / "weights" / "best.pt").names[0] == "circle"

    train.train(_args(tiny_data, tmp_path, "--resume", str(run / "weights" / "last.pt"), "--epochs", "2"))
    with open(run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["-1", "0", "1"]  # -1: --val-first, the starting weights
    assert "coco/AP_S" in rows[0] and "coco/AP_t" in rows[0]
    assert torch.load(run / "weights" / "last.pt", weights_only=True)["epoch"] == 1


def test_resume_of_a_finished_run_needs_more_epochs(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    train.train(_args(tiny_data, tmp_path, "--epochs", "1", "--cfg", "yolov5n.yaml", "--noval"))
    with pytest.raises(ValueError, match="--epochs"):
        train.train(_args(tiny_data, tmp_path, "--resume", str(tmp_path / "exp" / "weights" / "last.pt")))


def test_resume_refuses_changed_classes_and_changed_images_unless_asked(tiny_data, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    shutil.copytree(tiny_data.parent, tmp_path / "data")
    data = tmp_path / "data" / tiny_data.name
    train.train(_args(data, tmp_path, "--epochs", "1", "--cfg", "yolov5n.yaml", "--noval", "--noplots"))
    last = tmp_path / "exp" / "weights" / "last.pt"
    original = data.read_text()
    data.write_text(original.replace("circle", "ring"))
    with pytest.raises(ValueError, match="a resumed run cannot change its classes"):
        train.train(_args(data, tmp_path, "--resume", str(last), "--epochs", "2"))
    data.write_text(original)
    label = next((tmp_path / "data" / "ds" / "labels" / "train").glob("*.txt"))
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match="images or labels changed since the checkpoint .*--resume-changed-data"):
        train.train(_args(data, tmp_path, "--resume", str(last), "--epochs", "2"))
    train.train(_args(data, tmp_path, "--resume", str(last), "--epochs", "2", "--resume-changed-data"))
    assert torch.load(last, weights_only=True)["epoch"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _per_image_loss(model, images):
    return sum(m.float().square().mean(dim=(1, 2, 3, 4)) for m in model(images))  # (B,) additive per image


def _ddp_worker(rank: int, world: int, port: int, images: torch.Tensor, out: str) -> None:
    from utils import distributed as dist_utils

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=2).train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    dist_utils.init_distributed(torch.device("cpu"))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    local = images.chunk(world)[rank]
    loss = _per_image_loss(ddp, local).sum() / len(images) * world  # DDP averages over processes
    loss.backward()
    if rank == 0:
        torch.save({k: p.grad for k, p in model.named_parameters()}, out)
    dist_utils.cleanup_distributed()


def test_two_process_gradients_equal_one_process(tmp_path):
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    out = str(tmp_path / "grads.pt")
    mp.spawn(_ddp_worker, args=(2, _free_port(), images, out), nprocs=2, join=True)
    ddp_grads = torch.load(out, weights_only=True)

    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=2).train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    (_per_image_loss(model, images).sum() / len(images)).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, ddp_grads[name], rtol=1e-4, atol=1e-7), name


def test_resume_is_exact(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    common = ["--cfg", "yolov5n.yaml", "--noval", "--noautoanchor"]
    train.train(_args(tiny_data, tmp_path, "--epochs", "2", "--name", "straight", *common))
    train.train(_args(tiny_data, tmp_path, "--epochs", "1", "--name", "split", "--keep-optimizer", *common))
    train.train(_args(tiny_data, tmp_path, "--resume", str(tmp_path / "split" / "weights" / "last.pt"),
                      "--epochs", "2"))
    straight = torch.load(tmp_path / "straight" / "weights" / "last.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "weights" / "last.pt", weights_only=True)
    for key, value in straight["model"]["state_dict"].items():
        assert torch.equal(value, split["model"]["state_dict"][key]), key
    for key, value in straight["ema"].items():
        assert torch.equal(value, split["ema"][key]), key


def test_sigterm_saves_last_and_exits(tiny_data, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    python_path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "YOLOV5_SPD_CACHE": str(tmp_path / "cache"), "PYTHONPATH": python_path}
    cmd = [sys.executable, str(root / "train.py"), "--data", str(tiny_data), "--imgsz", "64", "--batch-size", "2",
           "--workers", "0", "--project", str(tmp_path), "--device", "cpu", "--epochs", "200", "--cfg",
           "yolov5n.yaml", "--noval"]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = tmp_path / "exp" / "results.csv"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if results.is_file() and len(results.read_text().splitlines()) >= 2:  # epoch 0 done
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, output  # interrupted, not finished
    assert "saved" in output
    last = torch.load(tmp_path / "exp" / "weights" / "last.pt", weights_only=True)
    assert last["partial_epoch"] and last["epoch"] >= 0


def test_weights_without_hyp_pick_the_recipe_by_domain(yolov5n_weights, shared, tiny_data, caplog):
    import logging

    from utils.detection.task import choose_finetune_recipe

    assert train.parse_args([]).hyp == "hyp.quick.yaml"
    assert train.parse_args(["--weights", "yolov5n.pt", "--hyp", "hyp.scratch.yaml"]).hyp == "hyp.scratch.yaml"
    coco = shared / "data" / "coco128" / "coco128.yaml"
    with caplog.at_level(logging.INFO, logger="yolov5_spd"):
        same = choose_finetune_recipe(train.parse_args(["--weights", str(yolov5n_weights), "--data", str(coco)]))
        new = choose_finetune_recipe(train.parse_args(["--weights", str(yolov5n_weights), "--data", str(tiny_data)]))
    assert (same.hyp, new.hyp) == ("hyp.finetune.yaml", "hyp.finetune_new_domain.yaml")
    lines = [r.getMessage() for r in caplog.records if "--weights without --hyp" in r.getMessage()]
    assert "the dataset has the checkpoint's 80 classes" in lines[0] and "are not the checkpoint's 80" in lines[1]
    chosen = train.parse_args(["--weights", str(yolov5n_weights), "--hyp", "hyp.scratch.yaml"])
    assert choose_finetune_recipe(chosen).hyp == "hyp.scratch.yaml"  # an explicit --hyp is never replaced


def test_frozen_batchnorm_statistics_do_not_move_in_training():
    from utils.engine.trainer import freeze_batchnorm_statistics

    model = DetectionModel("space_depth_n.yaml", nc=2).train()
    freeze_batchnorm_statistics(model)
    bn = model.model[1].bn
    before = bn.running_mean.clone()
    sum(m.sum() for m in model(torch.rand(2, 3, 64, 64))).backward()
    assert torch.equal(bn.running_mean, before) and bn.weight.grad is not None


def test_results_csv_has_yolov5_columns_and_the_run_ends_with_validation_pictures(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    train.train(_args(tiny_data, tmp_path, "--epochs", "1", "--cfg", "yolov5n.yaml"))
    run = tmp_path / "exp"
    with open(run / "results.csv") as f:
        header = next(csv.reader(f))
    assert header[:14] == ["epoch", "train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision",
                           "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss",
                           "val/obj_loss", "val/cls_loss", "x/lr0", "x/lr1", "x/lr2"]
    with open(run / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["val/box_loss"]) > 0 and row["coco/AP_L"] == "nan"  # no large objects: n/a, not 0
    for name in ("PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png", "confusion_matrix.png",
                 "confusion_matrix_normalized.png", "val_batch0_labels.jpg", "val_batch0_pred.jpg"):
        assert (run / name).is_file(), name


def test_python_calling_convention_matches_the_command_line(tiny_data, tmp_path, monkeypatch):
    import pytest

    from utils.engine.config import ConfigurationError

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigurationError, match="did you mean 'imgsz'"):
        train.run(data=str(tiny_data), imgsize=64)
    result = train.run(data=str(tiny_data), imgsz=64, batch_size=4, workers=0, epochs=1, device="cpu",
                       project=str(tmp_path), cfg="yolov5n.yaml", noval=True)
    assert (tmp_path / "exp" / "weights" / "best.pt").is_file() and result["save_dir"] == str(tmp_path / "exp")


def test_val_period_and_fast_val_still_end_with_a_full_evaluation(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    result = train.train(_args(tiny_data, tmp_path, "--epochs", "3", "--val-period", "2", "--fast-val"))
    with open(tmp_path / "exp" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    validated = [r["epoch"] for r in rows if r["val/box_loss"] != "nan"]
    assert validated == ["1", "2"]  # every second epoch, and the last
    assert all(r["coco/AP"] == "nan" for r in rows)  # no pycocotools per epoch
    assert "AP_S" in result["coco"]  # the final evaluation of best.pt is full
    assert len(result["val_loss"]) == 3 and all(math.isfinite(v) for v in result["val_loss"])  # evolve.csv's
    best_epoch = torch.load(tmp_path / "exp" / "weights" / "best.pt", weights_only=True)["epoch"]
    assert str(best_epoch) in validated  # an unvalidated epoch never replaces a validated best.pt


def test_noplots_saves_no_picture_and_the_same_files_otherwise(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    result = train.train(_args(tiny_data, tmp_path, "--epochs", "1", "--noplots"))
    run = tmp_path / "exp"
    assert not [p.name for p in run.rglob("*") if p.suffix in (".jpg", ".png")]
    assert (run / "results.csv").is_file() and (run / "weights" / "best.pt").is_file()
    assert "AP_S" in result["coco"]


def test_an_epoch_in_which_no_box_met_an_anchor_stops_the_run():
    from types import SimpleNamespace

    from utils.detection.task import DetectionTask
    from utils.engine.trainer import TrainingStopped

    task = DetectionTask()
    task.train_scan, task.imgsz = SimpleNamespace(n_boxes=30), 64
    with pytest.raises(TrainingStopped, match="no target was assigned to any anchor in a whole epoch"):
        task.results_row(torch.tensor([0.0, 0.02, 0.0]), {}, [0.01])
    assert len(task.results_row(torch.tensor([0.1, 0.02, 0.01]), {}, [0.01] * 3)) == len(task.csv_keys)
    task.train_scan = SimpleNamespace(n_boxes=0)  # nothing to assign: background-only data is not an error
    task.results_row(torch.tensor([0.0, 0.02, 0.0]), {}, [0.01])


def test_a_finished_run_strips_last_pt_says_so_and_can_still_be_extended(tiny_data, tmp_path, monkeypatch, caplog):
    import logging

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.INFO, logger="yolov5_spd"):
        train.train(_args(tiny_data, tmp_path, "--epochs", "1", "--cfg", "yolov5n.yaml", "--noplots"))
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "optimiser state stripped now that the run is finished" in log
    assert "COCO evaluation (faster-coco-eval) of 4 images" in log  # the per-epoch scoring says it is running
    last = tmp_path / "exp" / "weights" / "last.pt"
    assert torch.load(last, weights_only=True)["optimizer"] is None
    train.train(_args(tiny_data, tmp_path, "--resume", str(last), "--epochs", "2", "--noplots"))
    assert torch.load(last, weights_only=True)["epoch"] == 1
