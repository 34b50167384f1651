"""Reduced precision per device: what --half and AMP mean on this CPU, and the fp32 detection head under bf16."""

import pytest
import torch

from models.yolo import DetectionModel
from utils import precision


@pytest.mark.parametrize("native", [True, False])
def test_cpu_half_is_bf16_only_where_the_cpu_has_it(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: native)
    model = torch.nn.Linear(2, 2)
    use, line = precision.inference_half(model, torch.device("cpu"), True)
    assert use is native
    assert ("bf16 autocast" in line) if native else ("running fp32" in line)
    assert precision.inference_half(model, torch.device("cpu"), False) == (False, "")
    assert precision.inference_half(object(), torch.device("cpu"), True)[0] is False  # an exported model
    expected = torch.bfloat16 if native else None
    assert precision.autocast_dtype(torch.device("cpu")) is expected
    assert precision.autocast_dtype(torch.device("cpu"), enabled=False) is None


def test_cpu_line_names_the_units():
    line = precision.cpu_precision_line()
    assert line.startswith("CPU ") and ("bf16 autocast available" in line or "fp32 only" in line)


def test_detection_head_runs_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    model = DetectionModel("space_depth_n.yaml", nc=3).eval()
    head = model.detect
    shapes = [(1, c, 640 // s, 640 // s) for c, s in zip((64, 128, 256), (8, 16, 32))]
    features = [torch.randn(s).to(torch.bfloat16) for s in shapes]
    with torch.no_grad():
        reference = head([f.float() for f in features])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = head(features)
    assert out.dtype == torch.float32
    assert torch.equal(out, reference)  # the same values a fp32 head gives: no bf16 rounding of pixels


def test_a_bf16_training_step_runs_and_keeps_fp32_weights(tmp_path, monkeypatch):
    from tests.utils.engine.test_trainer import ToyTask, _config
    from utils.engine.trainer import Trainer

    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: True)  # emulated where the CPU lacks it
    trainer = Trainer(_config(tmp_path, epochs=1), ToyTask())
    trainer.run()
    assert trainer.amp_dtype == torch.bfloat16 and not trainer.opt.scaler.is_enabled()
    assert all(p.dtype == torch.float32 for p in trainer.task.model.parameters())
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: False)
    fp32 = Trainer(_config(tmp_path, epochs=1, name="fp32"), ToyTask())
    fp32.run()
    assert fp32.amp_dtype is None
