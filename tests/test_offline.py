"""Nothing opens a network connection: importing and using the data pipeline stays offline."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import socket
def refuse(self, address):
    raise SystemExit(f"network connection attempted: {address}")
socket.socket.connect = refuse
socket.create_connection = lambda *a, **k: refuse(None, a)
import threading, time
from utils.augmentations import AlbumentationsPipeline
AlbumentationsPipeline()
for t in threading.enumerate():  # an update check would run in a background thread
    if t is not threading.current_thread():
        t.join(timeout=5)
print("offline")
"""


def test_albumentations_makes_no_update_check():
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "offline" in out.stdout, out.stdout + out.stderr
