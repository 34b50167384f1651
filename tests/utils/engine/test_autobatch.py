"""AutoBatch: the fit from probe peaks to a batch size, the OOM stop, the one-line errors; the real probe on CUDA."""

import pytest
import torch

from utils.engine import autobatch
from utils.engine.autobatch import fit_batch_size, measure_peaks, require_cuda
from utils.engine.config import ConfigurationError

MIB = 2**20


def _linear(fixed_mib: float, per_image_mib: float, batches=autobatch.PROBE_BATCHES) -> dict[int, int]:
    return {b: int((fixed_mib + per_image_mib * b) * MIB) for b in batches}


def test_fit_picks_the_largest_batch_within_the_fraction():
    peaks = _linear(fixed_mib=500, per_image_mib=100)
    # 0.6 * 10 GiB = 6144 MiB; (6144 - 500) / 100 = 56.4 -> 56
    assert fit_batch_size(peaks, 10 * 1024 * MIB, 0.6) == 56
    assert fit_batch_size(peaks, 10 * 1024 * MIB, 0.3) == 25  # (3072 - 500) / 100 = 25.7
    assert fit_batch_size(peaks, 10**15, 0.6) == autobatch.MAX_BATCH


def test_a_probe_that_ran_out_of_memory_caps_the_batch():
    peaks = _linear(500, 100, batches=(1, 2, 4))  # batch 8 did not fit although the line says it would
    assert fit_batch_size(peaks, 10 * 1024 * MIB, 0.6) == 4


@pytest.mark.parametrize("peaks, free, message", [
    ({1: 100 * MIB}, 2**34, "only 1 probe batch"),
    (_linear(500, 0), 2**34, "did not grow"),
    (_linear(4000, 100), 2**32, "even batch 1"),
])
def test_unusable_measurements_are_one_line_errors(peaks, free, message):
    with pytest.raises(ConfigurationError, match=message):
        fit_batch_size(peaks, free)


def test_measure_stops_at_the_first_out_of_memory(monkeypatch):
    allocated = {"now": 0}
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: allocated.update(now=0))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: allocated["now"])
    stepped = []

    def step(batch):
        stepped.append(batch)
        if batch >= 8:
            raise torch.OutOfMemoryError("CUDA out of memory")
        allocated["now"] = 1000 + 10 * batch

    assert measure_peaks(step, torch.device("cuda", 0)) == {1: 1010, 2: 1020, 4: 1040}
    assert stepped == [1, 2, 4, 8]


def test_cpu_and_torchrun_are_refused_with_one_line():
    with pytest.raises(ConfigurationError, match=r"needs a CUDA GPU \(the device is cpu\)"):
        require_cuda(torch.device("cpu"), distributed=False)
    with pytest.raises(ConfigurationError, match="under torchrun"):
        require_cuda(torch.device("cuda", 0), distributed=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="AutoBatch's probe needs a CUDA GPU")
def test_probe_on_a_real_gpu_picks_a_batch_that_trains():
    from models.yolo import DetectionModel

    device = torch.device("cuda", 0)
    model = DetectionModel("space_depth_n.yaml", nc=80).to(device)
    batch = autobatch.auto_batch_size(model, 320, device, amp=True)
    assert 16 <= batch <= autobatch.MAX_BATCH
    step = autobatch.training_step_probe(model, 320, device, amp=True)
    step(min(batch, 64))  # a real step at (up to) the chosen size runs
