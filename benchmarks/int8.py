"""INT8 deployment on the CPU: accuracy and latency of export.py --int8 against FP32, same run.

    scripts/env.sh python benchmarks/int8.py                       # needs ../shared (coco128, yolov5n.pt); ~10 min
    scripts/env.sh python benchmarks/int8.py --runtime openvino    # the same with OpenVINO + NNCF

Models: the official yolov5n, and space_depth_n made from it by the exact transfer (python -m
utils.deploy.convert_weights yolov5n.pt out.pt --spd: the same function, twice the FLOPs). For each and each input size:
COCO AP / AP50 / AP_S on coco128 val2017 (square letterbox at the export size, batch 1) of the FP32 ONNX
export and the INT8 one (static QDQ, 200 calibration images from coco128 train2017), and batch-1 latency of
our PyTorch FP32 inference form, the FP32 ONNX and the INT8 ONNX under ONNX Runtime, 2 threads, each in its
own process, timed in turns so that the machine's drift moves all three alike (``--runtime openvino``: the
FP32 IR and its NNCF INT8 form instead). Prints the CPU's INT8 units (VNNI / AMX-INT8): both runtimes pick
their kernels from them at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import export
import val
from models.loading import model_from_weights
from utils.checkpoints.files import convert_checkpoint, load_checkpoint, model_payload, save_checkpoint
from utils.checkpoints.format import FORMAT
from utils.precision import cpu_features

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = str(SHARED / "data" / "coco128" / "coco128.yaml")


def _models(folder: Path) -> dict[str, Path]:
    yolov5n = convert_checkpoint(SHARED / "weights" / "yolov5n.pt", folder / "yolov5n.pt")
    model, report = model_from_weights(load_checkpoint(yolov5n), spd=True)
    spd = save_checkpoint({"format": FORMAT, "model": model_payload(model)}, folder / "space_depth_n.pt")
    print(report.line("yolov5n.pt -> space_depth_n"))
    return {"yolov5n": yolov5n, "space_depth_n": spd}


def _coco(weights: Path, imgsz: int, folder: Path) -> dict:
    result = val.run(data=DATA, weights=str(weights), imgsz=imgsz, batch_size=1, device="cpu", plots=False,
                     project=str(folder / "val"), workers=2)
    return result["coco"]


_LATENCY_SCRIPT = """
import json, sys, time
import torch
sys.path.insert(0, {root!r})
from utils.deploy.backends import load_any
torch.set_num_threads(2)
model = load_any({path!r}, torch.device("cpu"))
x = torch.rand(1, 3, {imgsz}, {imgsz})
if isinstance(model, torch.nn.Module):
    model, x = model.for_inference(), x.contiguous(memory_format=torch.channels_last)
times = []
with torch.inference_mode():
    for i in range({settle} + {block}):
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
print(json.dumps(times[{settle}:]))
"""


def _latencies_ms(paths: list[Path], imgsz: int, repeats: int, block: int = 10,
                  env: dict[str, str] | None = None) -> list[float]:
    """Batch-1 latency of each model file, each in its own fresh process (PyTorch's and ONNX Runtime's idle
    threads spin and slow the other runtime by 1.4-6× when they share a process), in turns of ``block`` timed
    calls after 3 untimed ones, so the machine's drift moves every model alike. Median over ``repeats``."""
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(max(1, repeats // block)):
        for path, record in zip(paths, times):
            script = _LATENCY_SCRIPT.format(root=str(ROOT), path=str(path), imgsz=imgsz, settle=3, block=block)
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                 env={**os.environ, **(env or {})})
            record.extend(json.loads(out.stdout.strip().splitlines()[-1]))
    return [statistics.median(record) * 1000 for record in times]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--calib-images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--skip-accuracy", action="store_true", help="latency only (no COCO evaluation)")
    p.add_argument("--max-isa", choices=["AVX2"], default=None, help="time on the CPU's AVX2 path: oneDNN (PyTorch's "
                   "and OpenVINO's) capped there, PyTorch's own kernels too; ONNX Runtime has no such switch")
    p.add_argument("--runtime", choices=["onnx", "openvino"], default="onnx",
                   help="ONNX Runtime static QDQ, or OpenVINO IR quantised by NNCF (the [openvino] extra)")
    args = p.parse_args()
    if args.max_isa and args.runtime == "onnx":
        p.error("--max-isa caps oneDNN, which ONNX Runtime does not use: add --runtime openvino")
    isa_env = {"ONEDNN_MAX_CPU_ISA": args.max_isa, "ATEN_CPU_CAPABILITY": args.max_isa.lower()} if args.max_isa else {}
    torch.set_num_threads(2)
    import onnxruntime as ort

    units = [k for k, v in cpu_features().items() if v and k in ("avx512_vnni", "amx_int8", "avx2")]
    print(f"ONNX Runtime {ort.__version__}; CPU INT8 units: {', '.join(units) or 'none'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, weights in _models(folder).items():
            for imgsz in args.sizes:
                stem = folder / f"{name}_{imgsz}.pt"
                stem.write_bytes(weights.read_bytes())
                fp32, int8 = export.export(str(stem), [args.runtime], imgsz=imgsz, int8=True, data=DATA,
                                           calib_images=args.calib_images)
                nan = {k: float("nan") for k in ("AP", "AP50", "AP_S")}
                a, b = (nan, nan) if args.skip_accuracy else (_coco(fp32, imgsz, folder), _coco(int8, imgsz, folder))
                ms = _latencies_ms([stem, fp32, int8], imgsz, args.repeats, env=isa_env)
                rows.append((name, imgsz, a, b, ms))
                print(rows[-1][:2], "done", flush=True)
    label = {"onnx": "ONNX", "openvino": "OpenVINO"}[args.runtime]
    print(f"\n| model | input | FP32 AP / AP50 / AP_S | INT8 AP / AP50 / AP_S | ΔAP | PyTorch FP32 (ms) "
          f"| {label} FP32 (ms) | {label} INT8 (ms) | INT8 / PyTorch |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for name, imgsz, a, b, ms in rows:
        print(f"| {name} | {imgsz} | {a['AP']:.4f} / {a['AP50']:.4f} / {a['AP_S']:.4f} | {b['AP']:.4f} / "
              f"{b['AP50']:.4f} / {b['AP_S']:.4f} | {b['AP'] - a['AP']:+.4f} | {ms[0]:.1f} | {ms[1]:.1f} | "
              f"{ms[2]:.1f} | {ms[2] / ms[0]:.2f} |")
    if rows:
        print(f"(median of {args.repeats} batch-1 runs per model, each in its own process, in turns of 10, 2 threads; "
              f"mean INT8/PyTorch "
              f"{np.mean([r[4][2] / r[4][0] for r in rows]):.2f})")


if __name__ == "__main__":
    main()
