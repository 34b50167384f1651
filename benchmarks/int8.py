"""INT8 deployment on the CPU: accuracy and latency of export.py --int8 against FP32, same run.

    scripts/env.sh python benchmarks/int8.py          # needs ../shared (coco128, yolov5n.pt); ~10 minutes

Models: the official yolov5n, and space_depth_n made from it by the exact transfer (python -m
utils.checkpoints yolov5n.pt out.pt --spd: the same function, twice the FLOPs). For each and each input size:
COCO AP / AP50 / AP_S on coco128 val2017 (square letterbox at the export size, batch 1) of the FP32 ONNX
export and the INT8 one (static QDQ, 200 calibration images from coco128 train2017), and batch-1 latency of
our PyTorch FP32 inference form, the FP32 ONNX and the INT8 ONNX under ONNX Runtime, 2 threads. Prints the
CPU's INT8 units (VNNI / AMX-INT8): ONNX Runtime picks its kernels from them at run time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import export
import val
from benchmarks.timing import median_ms
from utils.backends import load_any
from utils.checkpoints import (
    FORMAT,
    convert_checkpoint,
    load_checkpoint,
    load_model,
    model_from_weights,
    model_payload,
    save_checkpoint,
)
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


def _latency_ms(model, imgsz: int, repeats: int) -> float:
    x = torch.rand(1, 3, imgsz, imgsz)
    if isinstance(model, torch.nn.Module):
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return median_ms(lambda: model(x), repeats, warmup=2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--calib-images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(2)
    import onnxruntime as ort

    units = [k for k, v in cpu_features().items() if v and k in ("avx512_vnni", "amx_int8", "avx2")]
    print(f"ONNX Runtime {ort.__version__}; CPU INT8 units: {', '.join(units) or 'none'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, weights in _models(folder).items():
            torch_model = load_model(weights).for_inference()
            for imgsz in args.sizes:
                stem = folder / f"{name}_{imgsz}.pt"
                stem.write_bytes(weights.read_bytes())
                fp32, int8 = export.export(str(stem), ["onnx"], imgsz=imgsz, int8=True, data=DATA,
                                           calib_images=args.calib_images)
                a, b = _coco(fp32, imgsz, folder), _coco(int8, imgsz, folder)
                cpu = torch.device("cpu")
                ms = [_latency_ms(m, imgsz, args.repeats)
                      for m in (torch_model, load_any(fp32, cpu), load_any(int8, cpu))]
                rows.append((name, imgsz, a, b, ms))
                print(rows[-1][:2], "done", flush=True)
    print("\n| model | input | FP32 AP / AP50 / AP_S | INT8 AP / AP50 / AP_S | ΔAP | PyTorch FP32 (ms) "
          "| ONNX FP32 (ms) | ONNX INT8 (ms) | INT8 / PyTorch |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for name, imgsz, a, b, ms in rows:
        print(f"| {name} | {imgsz} | {a['AP']:.4f} / {a['AP50']:.4f} / {a['AP_S']:.4f} | {b['AP']:.4f} / "
              f"{b['AP50']:.4f} / {b['AP_S']:.4f} | {b['AP'] - a['AP']:+.4f} | {ms[0]:.1f} | {ms[1]:.1f} | "
              f"{ms[2]:.1f} | {ms[2] / ms[0]:.2f} |")
    if rows:
        print(f"(median of {args.repeats} batch-1 runs, 2 threads; mean over sizes INT8/PyTorch "
              f"{np.mean([r[4][2] / r[4][0] for r in rows]):.2f})")


if __name__ == "__main__":
    main()
