"""--compile: the training forward through ``torch.compile`` (inductor), opt-in.

Measured (README, "torch.compile for training"): on a 2-core AMX Xeon under bf16 autocast, the default there,
a compiled step is no faster than eager for space_depth_n and at most 10 % faster for yolov5n, after 50-100 s of
compilation; in float32 it is 3-30 % faster and pays back after 50-600 steps. So it stays off unless asked for.
Checkpoints, the EMA and validation keep using the plain model: only the training forward is compiled.
"""

from __future__ import annotations

import shutil

import torch

from utils.engine.config import ConfigurationError
from utils.logging import LOGGER


def compiled(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile(model)``, after checking the compiler inductor needs for ``device`` is there."""
    if device.type == "cpu" and not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        raise ConfigurationError("--compile on the CPU needs a C++ compiler (g++, c++ or clang++ on PATH); none "
                                 "found: install one or train without --compile")
    LOGGER.info("--compile: the training forward goes through torch.compile (inductor); the first steps compile "
                "it (about a minute on 2 CPU cores) and a new batch shape compiles again")
    return torch.compile(model)
