"""Nothing opens a network connection: importing and using the data pipeline stays offline, and so does a whole
run with the installed trackers in their offline modes (loopback to a tracker's own local service allowed)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import socket
def refuse(self, address):
    raise SystemExit(f"network connection attempted: {address}")
socket.socket.connect = refuse
socket.create_connection = lambda *a, **k: refuse(None, a)
import threading, time
from utils.data.augmentations import AlbumentationsPipeline
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


ENTRY_POINTS = """
import importlib.util, socket, sys
real_connect = socket.socket.connect
def refuse(self, address):
    raise SystemExit(f"network connection attempted: {address}")
def local_only(self, address):  # a tracker's own local service (W&B's) may use loopback or a unix socket
    host = address[0] if isinstance(address, tuple) else address
    if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
        return real_connect(self, address)
    refuse(self, address)
socket.socket.connect = local_only
socket.create_connection = lambda *a, **k: refuse(None, a)
import train, val, detect
data, project = sys.argv[1], sys.argv[2]
loggers = [name for name, module in (("mlflow", "mlflow"), ("wandb", "wandb")) if importlib.util.find_spec(module)]
result = train.train(train.parse_args(["--data", data, "--imgsz", "64", "--batch-size", "4", "--workers", "0",
                                       "--epochs", "1", "--project", project, "--device", "cpu"]
                                      + (["--loggers", *loggers] if loggers else [])))
best = result["save_dir"] + "/weights/best.pt"
val.run(data=data, weights=best, imgsz=64, workers=0, project=project + "/val", device="cpu")
detect.run(weights=best, source=sys.argv[3], imgsz=64, project=project + "/detect", device="cpu")
import importlib.util
formats = ["onnx"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
if importlib.util.find_spec("onnxruntime"):
    import export
    for path in export.export(best, formats, imgsz=64):
        val.run(data=data, weights=str(path), workers=0, project=project + "/val", device="cpu")
print("offline")
"""


def test_train_val_detect_open_no_connection(tmp_path):
    from utils.data.synthetic import NAMES, generate_dataset

    generate_dataset(tmp_path / "ds", n_train=4, n_val=2, seed=5)
    data = tmp_path / "d.yaml"
    data.write_text(f"path: ds\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["YOLOV5_SPD_CACHE"] = str(tmp_path / "cache")
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HOME=str(tmp_path / "home"))  # every tracker offline
    env.pop("MLFLOW_TRACKING_URI", None)  # MLflow: the local store beside the runs
    out = subprocess.run([sys.executable, "-c", ENTRY_POINTS, str(data), str(tmp_path / "runs"),
                          str(tmp_path / "ds" / "images" / "val")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and "offline" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert "--loggers" not in out.stdout + out.stderr, out.stderr[-2000:]  # every chosen tracker worked
    import importlib.util

    if importlib.util.find_spec("mlflow"):
        assert (tmp_path / "runs" / "mlruns" / "mlflow.db").is_file()
    if importlib.util.find_spec("wandb"):
        assert list((tmp_path / "runs" / "exp" / "wandb").glob("offline-run-*"))
