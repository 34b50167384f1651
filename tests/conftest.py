"""Shared fixtures: the ../shared data folder (tests that need it skip when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (real data and weights) is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def yolov5n_weights(shared: Path) -> Path:
    path = shared / "weights" / "yolov5n.pt"
    if not path.is_file():
        pytest.skip("../shared/weights/yolov5n.pt is absent")
    return path
