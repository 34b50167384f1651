"""--compile: the toy task trained through a real torch.compile equals eager, checkpoints keep the plain model's
names, and a CPU without a C++ compiler is a one-line error before anything trains."""

import logging

import pytest
import torch

from tests.utils.engine.test_trainer import ToyTask, _config
from utils.engine import compilation
from utils.engine.config import ConfigurationError
from utils.engine.trainer import Trainer


def test_compiled_training_equals_eager_and_saves_plain_names(tmp_path):
    if not any(compilation.shutil.which(name) for name in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler: inductor cannot build CPU kernels here")
    torch._dynamo.reset()
    # float32: under bf16 autocast inductor rounds its fused kernels differently (within bf16's precision)
    Trainer(_config(tmp_path, name="eager", epochs=2, no_amp=True), ToyTask()).run()
    Trainer(_config(tmp_path, name="compiled", epochs=2, no_amp=True, compile=True), ToyTask()).run()
    eager = torch.load(tmp_path / "eager" / "weights" / "last.pt", weights_only=True)["model"]["state_dict"]
    done = torch.load(tmp_path / "compiled" / "weights" / "last.pt", weights_only=True)["model"]["state_dict"]
    assert list(done) == list(eager)  # no "_orig_mod." prefixes
    for key, value in eager.items():
        torch.testing.assert_close(done[key], value, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "compiled" / "results.csv").read_text().count("\n") == 3


def test_no_cpp_compiler_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(compilation.shutil, "which", lambda name: None)
    with pytest.raises(ConfigurationError, match="--compile on the CPU needs a C.. compiler"):
        Trainer(_config(tmp_path, compile=True), ToyTask()).run()
    assert not (tmp_path / "exp" / "weights" / "last.pt").exists()


def test_train_py_takes_the_switch():
    import train

    assert train.parse_args(["--compile"]).compile is True
    assert train.parse_args([]).compile is False


@pytest.mark.parametrize("amp_dtype, says_slower", [(torch.bfloat16, True), (None, False)])
def test_cpu_bf16_run_is_told_compiling_does_not_pay(monkeypatch, caplog, amp_dtype, says_slower):
    monkeypatch.setattr(compilation.shutil, "which", lambda name: "/usr/bin/g++")
    monkeypatch.setattr(compilation.torch, "compile", lambda model: model)
    model = torch.nn.Linear(2, 2)
    with caplog.at_level(logging.INFO, logger="yolov5_spd"):
        assert compilation.compiled(model, torch.device("cpu"), amp_dtype) is model
    assert any("under CPU bf16 autocast" in r.getMessage() for r in caplog.records) is says_slower
