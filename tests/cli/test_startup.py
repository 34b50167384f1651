"""The command-line faces print --help without importing PyTorch, OpenCV or the library (they load after the
arguments are parsed), which is what keeps --help and usage errors instant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
sys.path.insert(0, {root!r})
import {module} as face
try:
    face.main(["--help"])
except SystemExit:
    pass
light = {{"utils", "utils.engine", "utils.engine.command_line"}}  # argparse helpers shared by the faces
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "cv2", "numpy", "utils", "models")
               and m not in light)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("module", ["train", "val", "detect", "export"])
def test_help_imports_nothing_heavy(module):
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), module=module)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert "usage:" in out.stdout, out.stderr[-2000:]
    assert out.stdout.strip().endswith("HEAVY:"), out.stdout.splitlines()[-1]


def test_export_formats_match_the_library():
    import export
    from utils.deploy.exporters import FORMATS

    assert export.FORMATS == FORMATS
