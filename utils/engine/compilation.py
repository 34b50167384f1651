"""--compile: the training forward through ``torch.compile`` (inductor), opt-in.

Measured (docs/benchmarks/time-per-phase.md, "torch.compile for training"): under bf16 autocast, the default on
CPUs that have bf16, a compiled step is at most 10 % faster than eager on a 2-core AMX Xeon and 6-20 % slower
on a 2-core AVX-512 bf16 AMD EPYC, after 40-100 s of compilation; in float32 it is 3-30 % faster and pays back
after 50-2000 steps. So it stays off unless asked for, and asking for it under CPU bf16 says so in the log.
Checkpoints, the EMA and validation keep using the plain model: only the training forward is compiled.
"""

from __future__ import annotations

import shutil

import torch

from utils.engine.config import ConfigurationError, TrainConfig
from utils.logging import LOGGER


def compiled(model: torch.nn.Module, device: torch.device, amp_dtype: torch.dtype | None = None) -> torch.nn.Module:
    """``torch.compile(model)``, after checking the compiler inductor needs for ``device`` is there; ``amp_dtype``:
    the run's autocast type (None: float32)."""
    if device.type == "cpu" and not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        raise ConfigurationError("--compile on the CPU needs a C++ compiler (g++, c++ or clang++ on PATH); none "
                                 "found: install one or train without --compile")
    LOGGER.info("--compile: the training forward goes through torch.compile (inductor); the first steps compile "
                "it (about a minute on 2 CPU cores) and a new batch shape compiles again")
    if device.type == "cpu" and amp_dtype == torch.bfloat16:
        LOGGER.info("--compile under CPU bf16 autocast: measured no faster than eager, or slower, on the CPUs tried "
                    "(docs/benchmarks/time-per-phase.md); it gains 3-30 % in float32 (--no-amp)")
    return torch.compile(model)


def training_model(model: torch.nn.Module, config: TrainConfig, device: torch.device, distributed: bool,
                   amp_dtype: torch.dtype | None) -> torch.nn.Module:
    """What the training steps run: ``model`` with SyncBatchNorm (--sync-bn, several CUDA processes), wrapped in
    DDP when distributed, and compiled with --compile; checkpoints keep the plain model."""
    if config.sync_bn:
        if distributed and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            LOGGER.info("--sync-bn ignored: SyncBatchNorm needs several CUDA processes "
                        "(PyTorch has no CPU kernel for it); training goes on with plain BatchNorm")
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return compiled(model, device, amp_dtype) if config.compile else model
