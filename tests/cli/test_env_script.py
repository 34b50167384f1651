"""scripts/env.sh: the environment's place is its own setting, not the image cache's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_cache_variable_does_not_move_the_environment(tmp_path):
    env = {**os.environ, "YOLOV5_SPD_CACHE": str(tmp_path / "images-elsewhere")}
    env.pop("YOLOV5_SPD_ENV_CACHE", None)
    out = subprocess.run([str(ROOT / "scripts" / "env.sh"), "python", "-c", "import sys; print(sys.prefix)"],
                         env=env, capture_output=True, text=True, timeout=900, check=True).stdout.strip()
    assert not out.startswith(str(tmp_path)) and not (tmp_path / "images-elsewhere").exists()
