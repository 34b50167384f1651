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


@pytest.mark.parametrize("module", ["train", "val", "detect", "export", "classify.train", "classify.val",
                                    "classify.predict"])
@pytest.mark.parametrize("chosen", [None, "ACTIVE"])
def test_faces_let_idle_threads_sleep_unless_the_user_chose(module, chosen):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if chosen:
        env["OMP_WAIT_POLICY"] = chosen
    probe = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import os, {module}; "
             "print('POLICY:' + os.environ['OMP_WAIT_POLICY'], 'SPIN:' + os.environ.get('GOMP_SPINCOUNT', '-'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert f"POLICY:{chosen or 'PASSIVE'} SPIN:{'-' if chosen else '10000'}" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize("module", ["train", "val", "detect", "classify.train", "classify.val", "classify.predict"])
def test_faces_refuse_an_unknown_memory_setting_in_one_line(module):
    import os

    env = {**os.environ, "YOLOV5_SPD_KEEP_FREED_MEMORY": "yes"}
    probe = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {module} as face; face.main([])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]  # one line, no traceback
    assert out.stderr.startswith("error: YOLOV5_SPD_KEEP_FREED_MEMORY='yes'")
