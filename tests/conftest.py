"""Shared fixtures: the ../shared data folder (tests that need it skip when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A dataset YAML for 8 train / 4 val images of the embedded generator (made once per session)."""
    from utils.data.synthetic import NAMES, generate_dataset

    root = tmp_path_factory.mktemp("tiny")
    generate_dataset(root / "ds", n_train=8, n_val=4, seed=3)
    yaml_path = root / "tiny.yaml"
    yaml_path.write_text(f"path: ds\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    return yaml_path
