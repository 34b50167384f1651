"""AutoBatch (``--batch-size -1``): the largest batch whose training step fits a fraction of the GPU's memory.

A few small batches are stepped (forward and backward, AMP as in training) and their peak memory measured;
a straight line through (batch, bytes) says how many bytes each image costs, and the batch is the largest one
whose predicted peak stays within ``fraction`` of what the GPU had free before the probe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from utils.engine.config import ConfigurationError
from utils.logging import LOGGER

DEFAULT_FRACTION = 0.6  # of the free memory; the rest absorbs fragmentation, cuDNN workspaces, the loader's pins
PROBE_BATCHES = (1, 2, 4, 8, 16)
MAX_BATCH = 1024


def require_cuda(device: torch.device, distributed: bool) -> None:
    """AutoBatch measures one CUDA device; anywhere else it is a one-line error."""
    if device.type != "cuda":
        raise ConfigurationError(f"--batch-size -1 (AutoBatch) needs a CUDA GPU (the device is {device}); "
                                 f"give a batch size, e.g. --batch-size 16")
    if distributed:
        raise ConfigurationError("--batch-size -1 (AutoBatch) works in one process; under torchrun give the "
                                 "total batch size")


def fit_batch_size(peaks: dict[int, int], free_bytes: int, fraction: float = DEFAULT_FRACTION,
                   max_batch: int = MAX_BATCH) -> int:
    """The largest batch whose predicted peak (a line through ``peaks``: batch -> bytes) fits
    ``fraction * free_bytes``; at least 1, at most ``max_batch``. Fewer than two measured batches is an error."""
    if not 0 < fraction <= 1:
        raise ConfigurationError(f"AutoBatch fraction must be in (0, 1], got {fraction}")
    if len(peaks) < 2:
        raise ConfigurationError(f"AutoBatch: only {len(peaks)} probe batch(es) fitted in GPU memory; the model "
                                 f"is too large for this GPU at this image size")
    batches = np.array(sorted(peaks), dtype=float)
    used = np.array([peaks[int(b)] for b in batches], dtype=float)
    per_image, fixed = np.polyfit(batches, used, 1)
    if per_image <= 0:  # memory did not grow with the batch: the measurement is meaningless
        raise ConfigurationError("AutoBatch: peak memory did not grow with the batch size; give a batch size")
    batch = int((fraction * free_bytes - fixed) // per_image)
    largest_fitted = int(batches[-1])
    if batch < 1:
        raise ConfigurationError(f"AutoBatch: even batch 1 would exceed {fraction:.0%} of the free GPU memory")
    if len(peaks) < len(PROBE_BATCHES):  # a probe ran out of memory: never go above what actually ran
        batch = min(batch, largest_fitted)
    return min(batch, max_batch)


def measure_peaks(step: Callable[[int], None], device: torch.device,
                  batches: Sequence[int] = PROBE_BATCHES) -> dict[int, int]:
    """Peak allocated bytes of ``step(batch)`` for each batch, stopping at the first that runs out of memory."""
    peaks: dict[int, int] = {}
    for batch in batches:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        try:
            step(batch)
            torch.cuda.synchronize(device)
        except torch.OutOfMemoryError:
            break
        peaks[batch] = int(torch.cuda.max_memory_allocated(device))
    torch.cuda.empty_cache()
    return peaks


def training_step_probe(model: torch.nn.Module, imgsz: int, device: torch.device, amp: bool
                        ) -> Callable[[int], None]:
    """One forward and backward of ``model`` on a zero batch; the loss is the sum of every output tensor."""

    def step(batch: int) -> None:
        images = torch.zeros(batch, 3, imgsz, imgsz, device=device).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", enabled=amp):
            outputs = model(images)
        tensors = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        sum(t.float().sum() for t in tensors if isinstance(t, torch.Tensor)).backward()
        model.zero_grad(set_to_none=True)

    return step


def auto_batch_size(model: torch.nn.Module, imgsz: int, device: torch.device, amp: bool,
                    fraction: float = DEFAULT_FRACTION) -> int:
    """Probe ``model`` on ``device`` and return the batch size AutoBatch picks (logged with its figures)."""
    free, total = torch.cuda.mem_get_info(device)
    was_training = model.training
    model.train()
    peaks = measure_peaks(training_step_probe(model, imgsz, device, amp), device)
    model.train(was_training)
    batch = fit_batch_size(peaks, free, fraction)
    per_image = (peaks[max(peaks)] - peaks[min(peaks)]) / max(max(peaks) - min(peaks), 1)
    LOGGER.info(f"AutoBatch: {torch.cuda.get_device_name(device)} {total / 2**30:.1f} GiB, {free / 2**30:.1f} GiB "
                f"free, about {per_image / 2**20:.0f} MiB per image at {imgsz} px -> batch size {batch} "
                f"({fraction:.0%} of the free memory)")
    return batch
