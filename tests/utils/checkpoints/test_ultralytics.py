"""Checkpoints in ultralytics' pickle layout, made here with stand-in classes under ultralytics' names (no
ultralytics package needed), and the reference checkpoints in ../shared when present."""

import json
import sys
import types
from pathlib import Path

import pytest
import torch

from models.loading import load_model
from models.yolo import DetectionModel
from utils.checkpoints.files import load_checkpoint
from utils.checkpoints.format import CheckpointError

_THEIR_NAMES = {
    "Conv": "conv.Conv", "DWConv": "conv.DWConv", "Concat": "conv.Concat", "C2f": "block.C2f", "C3k2": "block.C3k2",
    "C3k": "block.C3k", "Bottleneck": "block.Bottleneck", "SPPF": "block.SPPF", "C2PSA": "block.C2PSA",
    "PSABlock": "block.PSABlock", "PositionSensitiveAttention": "block.Attention", "DFL": "block.DFL",
    "AnchorFreeDetect": "head.Detect",
}


def _save_in_ultralytics_layout(model: DetectionModel, path: Path, monkeypatch, task_class: str = "DetectionModel",
                                extra: dict | None = None) -> None:
    """Pickle ``model`` as ultralytics saves one: its classes renamed to ultralytics', fp16, its YAML as theirs."""
    fakes: dict[str, types.ModuleType] = {}

    def stand_in(cls: type, qualified: str) -> type:
        module, name = qualified.rsplit(".", 1)
        fake = fakes.setdefault(module, types.ModuleType(module))
        if not hasattr(fake, name):
            setattr(fake, name, type(name, (cls,), {"__module__": module, "__qualname__": name}))
        return getattr(fake, name)

    for module in model.modules():
        name = type(module).__name__
        if module is model:
            module.__class__ = stand_in(type(module), f"ultralytics.nn.tasks.{task_class}")
        elif name in _THEIR_NAMES:
            module.__class__ = stand_in(type(module), f"ultralytics.nn.modules.{_THEIR_NAMES[name]}")
    for module_name, fake in list(fakes.items()):
        parts = module_name.split(".")
        for i in range(1, len(parts)):  # the parent packages, for pickle's import of the module
            parent = ".".join(parts[:i])
            fakes.setdefault(parent, types.ModuleType(parent))
        monkeypatch.setitem(sys.modules, module_name, fake)
    for module_name, fake in fakes.items():
        monkeypatch.setitem(sys.modules, module_name, fake)
    their_yaml = {k: v for k, v in model.yaml.items() if k not in ("depth_multiple", "width_multiple", "max_channels")}
    their_yaml["head"] = [*their_yaml["head"][:-1], [*their_yaml["head"][-1][:2], "Detect", ["nc"]]]
    model.yaml = their_yaml
    model.names = dict(enumerate(model.names))
    torch.save({"model": model.half(), "ema": None, "train_args": {"imgsz": 64}, "version": "8.4.190",
                **(extra or {})}, path)


@pytest.mark.parametrize("cfg", ["yolo11n.yaml", "yolov8n.yaml"])
def test_an_ultralytics_checkpoint_loads_exactly_with_its_names(cfg, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=3).eval()
    model.names = ["car", "person", "bike"]
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        expected = model.half().float()(x)
    _save_in_ultralytics_layout(model, tmp_path / "theirs.pt", monkeypatch)
    monkeypatch.undo()  # the file must load without the stand-ins
    loaded = load_model(tmp_path / "theirs.pt")
    assert loaded.names == ["car", "person", "bike"] and not loaded.anchor_based
    assert loaded.detect.depthwise_cls == cfg.startswith("yolo11")
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def test_other_ultralytics_tasks_and_foreign_globals_are_one_line(tmp_path, monkeypatch):
    model = DetectionModel("yolo11n.yaml", nc=2)
    _save_in_ultralytics_layout(model, tmp_path / "seg.pt", monkeypatch, task_class="SegmentationModel")
    with pytest.raises(CheckpointError, match="an ultralytics segmentation model.*supported: YOLOv8 and YOLO11"):
        load_checkpoint(tmp_path / "seg.pt")
    model = DetectionModel("yolov8n.yaml", nc=2)
    _save_in_ultralytics_layout(model, tmp_path / "bad.pt", monkeypatch, extra={"x": _Sneaky()})
    refused = "unsafe or unsupported checkpoint.*refused to load global '(os|posix).system'"
    with pytest.raises(CheckpointError, match=refused):
        load_checkpoint(tmp_path / "bad.pt")


def test_an_nms_free_model_is_refused(tmp_path, monkeypatch):
    model = DetectionModel("yolo11n.yaml", nc=2)
    model.yaml["end2end"] = True
    _save_in_ultralytics_layout(model, tmp_path / "e2e.pt", monkeypatch)
    with pytest.raises(CheckpointError, match="NMS-free"):
        load_checkpoint(tmp_path / "e2e.pt")


class _Sneaky:
    def __reduce__(self):
        import os

        return os.system, ("echo pwned",)


@pytest.mark.parametrize("name", ["yolo11n_smallobj", "yolov8n_smallobj"])
def test_reference_checkpoint_validates_to_ultralytics_figures(shared, name, tmp_path):
    from utils.detection.validation import run_validation

    REFERENCE = shared / "reference" / "ultralytics"
    if not (REFERENCE / f"{name}.pt").is_file():
        pytest.skip(f"../shared/reference/ultralytics/{name}.pt is absent")
    figures = json.loads((REFERENCE / "figures.json").read_text())[name]
    result = run_validation(data=str(REFERENCE / "smallobj_val" / "data.yaml"), weights=str(REFERENCE / f"{name}.pt"),
                            imgsz=256, batch_size=16, project=str(tmp_path), plots=False, save_json=True, workers=0)
    assert result["mAP50_95"] == pytest.approx(figures["map50_95"], abs=0.003)
    assert result["mAP50"] == pytest.approx(figures["map50"], abs=0.003)
    assert result["P"] == pytest.approx(figures["precision"], abs=0.01)
    assert result["R"] == pytest.approx(figures["recall"], abs=0.01)
    for key in ("AP", "AP50", "AP_S"):
        assert result["coco"][key] == pytest.approx(figures["faster_coco_eval"][key], abs=0.002)
    # the same boxes: every prediction ultralytics wrote (1-based categories) is among ours, to its 3 decimals
    theirs = json.loads((REFERENCE / f"{name}_val_predictions.json").read_text())
    ours = json.loads((tmp_path / "exp" / "predictions.json").read_text())
    assert len(ours) == len(theirs)
    key = lambda p, shift: (str(p["image_id"]), p["category_id"] + shift, *(round(v, 1) for v in p["bbox"]))  # noqa: E731
    mine = {key(p, 1) for p in ours}
    missing = [p for p in theirs if key(p, 0) not in mine]
    assert len(missing) <= len(theirs) // 1000  # a box on a rounding edge of the 0.1 px key


def test_a_model_that_contains_itself_is_one_line(tmp_path, monkeypatch):
    """A 1 KB pickle whose model lists itself among its modules: one line, not a RecursionError."""

    class Model:  # stands in for a yolov5 models.yolo.Model: only its name goes into the file
        pass

    Model.__module__, Model.__qualname__ = "models.yolo_stand_in", "Model"
    fake = types.ModuleType("models.yolo_stand_in")
    fake.Model = Model
    monkeypatch.setitem(sys.modules, "models.yolo_stand_in", fake)
    model = Model()
    model.__dict__.update({"yaml": {"nc": 1, "backbone": [], "head": []}, "_parameters": {}, "_buffers": {},
                           "_modules": {"0": model}})
    torch.save({"model": model}, tmp_path / "loop.pt")
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="unsafe or unsupported checkpoint.*nested more than"):
        load_checkpoint(tmp_path / "loop.pt")


@pytest.mark.parametrize("target_cfg", ["yolo11n.yaml", "yolo11n_spd.yaml"])
def test_their_weights_fine_tune_onto_another_class_count(target_cfg, tmp_path, monkeypatch):
    """A yolo11n.pt trained on 3 classes starts a 2-class run: the same graph (or its SPD form) with the class
    rows of the head re-initialised, never 'cannot map the weights'."""
    from models.spd_transfer import transfer_state
    from utils.checkpoints.files import load_checkpoint

    _save_in_ultralytics_layout(DetectionModel("yolo11n.yaml", nc=3), tmp_path / "theirs.pt", monkeypatch)
    monkeypatch.undo()
    payload = load_checkpoint(tmp_path / "theirs.pt")["model"]
    report = transfer_state(payload["state_dict"], payload["config"], DetectionModel(target_cfg, nc=2))
    assert report.mode == ("same graph" if target_cfg == "yolo11n.yaml" else "spd")
    assert 0 < len(report.skipped) <= 6 and all(".cv3." in key for key in report.skipped)
