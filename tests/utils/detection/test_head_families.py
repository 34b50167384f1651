"""The anchor-free family (YOLOv8 / YOLO11) through the same task, faces and exports as YOLOv5."""

import csv

import pytest
import torch

from models.yolo import DetectionModel
from utils.detection.head_families import ANCHOR_BASED, ANCHOR_FREE, family_of, family_of_config


def test_family_lookup_from_models_configs_and_exports():
    assert family_of(DetectionModel("yolo11n.yaml", nc=2)) is ANCHOR_FREE
    assert family_of(DetectionModel("yolov5n.yaml", nc=2)) is ANCHOR_BASED
    assert family_of_config({"head": [[[1, 2], 1, "Detect", ["nc"]]]}) is ANCHOR_FREE  # ultralytics' spelling
    assert family_of_config({"head": [[[1, 2], 1, "Detect", ["nc", "anchors"]]], "anchors": 3}) is ANCHOR_BASED
    assert ANCHOR_BASED.csv_keys[:3] == ["train/box_loss", "train/obj_loss", "train/cls_loss"]
    assert ANCHOR_FREE.csv_keys[:3] == ["train/box_loss", "train/cls_loss", "train/dfl_loss"]


def test_train_val_detect_export_round_trip(tiny_data, tmp_path, monkeypatch):
    import detect
    import export
    import train
    import val

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    train.run(cfg="yolo11n.yaml", data=str(tiny_data), epochs=1, imgsz=64, batch_size=4, workers=0,
              project=str(tmp_path / "runs"), noplots=True)
    run = tmp_path / "runs" / "exp"
    header = next(csv.reader((run / "results.csv").open()))
    assert [h.strip() for h in header[1:4]] == ["train/box_loss", "train/cls_loss", "train/dfl_loss"]
    hyp = (run / "hyp.yaml").read_text()
    assert "dfl: 1.5" in hyp and "close_mosaic: 10" in hyp  # the anchor-free recipe by default
    best = run / "weights" / "best.pt"
    metrics = val.run(weights=str(best), data=str(tiny_data), imgsz=64, project=str(tmp_path / "val"), plots=False,
                      workers=0)
    assert metrics["images"] == 4 and 0 <= metrics["mAP50_95"] <= 1
    summary = (tmp_path / "val" / "exp" / "metrics.json").read_text()
    assert '"iou_thres": 0.7' in summary  # ultralytics' validation IoU for this family
    frames = detect.run(weights=str(best), source=str(tiny_data.parent / "ds" / "images" / "val"), imgsz=64,
                        conf_thres=0.0, project=str(tmp_path / "detect"), nosave=True)
    assert len(frames) == 4 and all(len(f.boxes) <= 300 for f in frames)
    onnx = export.run(weights=str(best), include=["onnx"], imgsz=64)
    pytest.importorskip("onnxruntime")
    exported = val.run(weights=str(onnx[0]), data=str(tiny_data), imgsz=64, project=str(tmp_path / "val"),
                       plots=False, workers=0)
    assert exported["mAP50_95"] == pytest.approx(metrics["mAP50_95"], abs=0.002)
    train.run(resume=str(run / "weights" / "last.pt"), epochs=2, workers=0)  # the family comes back from last.pt
    assert len(list(csv.reader((run / "results.csv").open()))) == 3


def test_a_yolov5_hyp_file_is_refused_for_the_anchor_free_head(tiny_data, tmp_path):
    import train
    from utils.engine.config import ConfigurationError

    with pytest.raises(ConfigurationError, match="missing hyper-parameters dfl"):
        train.run(cfg="yolov8n.yaml", hyp="hyp.scratch.yaml", data=str(tiny_data), epochs=1, imgsz=64,
                  project=str(tmp_path / "runs"))


def test_auto_optimizer_follows_ultralytics_rule():
    from utils.engine.optim import resolve_auto_optimizer

    hyp = {"lr0": 0.01, "momentum": 0.937, "warmup_bias_lr": 0.1, "nbs": 64}
    assert "AdamW" in resolve_auto_optimizer(hyp, 240, 16, 30, 6)
    assert (hyp["optimizer"], hyp["lr0"], hyp["momentum"], hyp["warmup_bias_lr"]) == ("AdamW", 0.001, 0.9, 0.0)
    hyp = {"lr0": 0.002, "momentum": 0.937, "warmup_bias_lr": 0.0, "nbs": 64}
    resolve_auto_optimizer(hyp, 118_287, 16, 300, 80)  # COCO for 300 epochs
    assert (hyp["optimizer"], hyp["lr0"], hyp["momentum"]) == ("SGD", 0.01, 0.9)


def test_close_mosaic_turns_mosaic_off_in_the_last_epochs(tiny_data):
    from utils.data.dataset import YoloDataset
    from utils.data.formats import load_dataset_config
    from utils.data.scan import scan_split

    scan = scan_split(load_dataset_config(str(tiny_data)), "train")
    still = {"hsv_h": 0, "hsv_s": 0, "hsv_v": 0, "translate": 0, "scale": 0, "fliplr": 0, "albumentations": 0}
    dataset = YoloDataset(scan, 64, 4, augment=True, hyp={**still, "mosaic": 1.0, "close_mosaic": 2})
    dataset.total_epochs = 5
    assert not dataset._mosaic_closed(2) and dataset._mosaic_closed(3) and dataset._mosaic_closed(4)
    plain = YoloDataset(scan, 64, 4, augment=True, hyp={**still, "mosaic": 0.0})
    assert torch.equal(dataset[(4, 1)][0], plain[(4, 1)][0])  # the last epochs: the image alone
    assert not torch.equal(dataset[(0, 1)][0], plain[(0, 1)][0])  # before: a mosaic


def test_every_trainable_tensor_gets_a_gradient_as_ddp_requires():
    """The DFL's fixed bins stay frozen through --freeze handling: DDP refuses a trainable tensor no loss reaches."""
    from utils.detection.anchor_free_loss import AnchorFreeLoss
    from utils.detection.task import DetectionTask

    task = DetectionTask(ANCHOR_FREE)
    task.model = DetectionModel("yolov8n.yaml", nc=2)
    task._freeze([0])
    assert not task.model.detect.dfl.conv.weight.requires_grad
    loss, _ = AnchorFreeLoss(2, task.model.stride.tolist())(task.model(torch.rand(2, 3, 64, 64)),
                                                           torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.3]]))
    loss.backward()
    assert [n for n, p in task.model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_an_ensemble_of_both_head_families_is_refused():
    from models.ensemble import Ensemble

    members = [DetectionModel("yolov5n.yaml", nc=2), DetectionModel("yolo11n.yaml", nc=2)]
    for m in members:
        m.names = ["a", "b"]
    with pytest.raises(ValueError, match="one head family"):
        Ensemble(members, ["v5.pt", "11.pt"])
    assert Ensemble(members[1:] * 2).anchor_based is False
