"""bf16 on the CPU: accuracy and speed of ``--half`` (val.py) and of bf16 training steps, against fp32, same run.

    scripts/env.sh python benchmarks/precision.py            # needs ../shared (coco128, yolov5n.pt)

Prints what this CPU has (AVX-512 bf16 / AMX / AVX2 only), then
  1. val.py with the official yolov5n on coco128 val2017 at 320 and 640: AP, AP50, AP_S fp32 vs --half (bf16
     autocast, box decoding in fp32) — the goal is |AP difference| <= 0.002;
  2. batch-1 latency of space_depth_n and yolov5n at 320 and 640, fp32 vs bf16 autocast;
  3. training images/s of space_depth_n (batch 8 at 320 and 640, forward + loss + backward + SGD), fp32 vs bf16.
On a CPU without native bf16 the bf16 figures are emulated (slow) and say so.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import val
from benchmarks.timing import latency_figures, synthetic_targets, training_figures
from models.yolo import DetectionModel
from utils.detection.anchor_based_loss import LossGains, YoloLoss
from utils.precision import autocast, cpu_bf16_native, cpu_precision_line

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def accuracy(sizes: list[int]) -> list[str]:
    lines = ["| input | precision | AP | AP50 | AP_S |", "|---:|---|---:|---:|---:|"]
    for imgsz in sizes:
        for half in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                result = val.run(data=str(SHARED / "data" / "coco128" / "coco128.yaml"),
                                 weights=str(SHARED / "weights" / "yolov5n.pt"), imgsz=imgsz, batch_size=32,
                                 device="cpu", half=half, project=tmp, plots=False, workers=2)
            coco = result["coco"]
            lines.append(f"| {imgsz} | {'bf16' if half else 'fp32'} | {coco['AP']:.4f} | {coco['AP50']:.4f} | "
                         f"{coco['AP_S']:.4f} |")
    return lines


def speed(sizes: list[int], repeats: int) -> list[str]:
    lines = ["| model | input | fp32 latency (ms) | bf16 latency (ms) | fp32 train img/s | bf16 train img/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for cfg in ("space_depth_n", "yolov5n"):
        for imgsz in sizes:
            model = DetectionModel(f"{cfg}.yaml", nc=80)
            inference = model.for_inference()
            x = torch.rand(1, 3, imgsz, imgsz).contiguous(memory_format=torch.channels_last)
            fp32 = latency_figures(inference, x, repeats)["ms"]
            with autocast(x.device, torch.bfloat16):
                bf16_ms = latency_figures(inference, x, repeats)["ms"]
            train = DetectionModel(f"{cfg}.yaml", nc=80).train()
            loss = YoloLoss(train.detect.anchors, 80, LossGains(), imgsz)
            images = torch.rand(8, 3, imgsz, imgsz).contiguous(memory_format=torch.channels_last)
            targets = synthetic_targets(8, 80)
            rates = []
            for use_bf16 in (False, True):
                optimizer = torch.optim.SGD(train.parameters(), lr=1e-4, momentum=0.9)
                rates.append(training_figures(train, loss, optimizer, images, targets, steps=3,
                                              bf16=use_bf16)["images_per_s"])
            lines.append(f"| {cfg} | {imgsz} | {fp32:.1f} | {bf16_ms:.1f} | {rates[0]:.2f} | {rates[1]:.2f} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--skip-accuracy", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    print(cpu_precision_line() + ("" if cpu_bf16_native() else " — bf16 figures below are emulated"))
    if not args.skip_accuracy:
        if not (SHARED / "weights" / "yolov5n.pt").is_file():
            raise SystemExit(f"{SHARED}: not found (coco128 and yolov5n.pt are needed for the accuracy half)")
        print("\n".join(accuracy(args.sizes)))
    print("\n".join(speed(args.sizes, args.repeats)))


if __name__ == "__main__":
    main()
