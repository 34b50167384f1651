"""SPD vs strided: YOLOv5-SPD-n and YOLOv5n trained from scratch with the same recipe on the embedded
small-object dataset, at two input sizes, then compared on COCO AP / AP_S, size, speed and training time.

    scripts/env.sh python benchmarks/spd_vs_strided.py            # about 40 minutes on 2 CPU cores

Same seed, data, hyp (configs/hyp.quick.yaml), epochs and batch for both models at each size; the lower input
size makes every object smaller in pixels (the embedded images are 320-384 px, so at 128 the objects are
1.5-18 px), where the paper expects space-to-depth to help most. A 128 px epoch costs a quarter of a 256 px
one and learning is slower there, so the lower size gets more epochs (40 at 256, 120 at 128 by default). Writes
runs/spd_vs_strided/results.md (the table) and ap_s.png (AP_S per epoch).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

import train
from benchmarks.curves import plot_per_size
from benchmarks.latency import measure
from models.summary import count_gflops, count_parameters
from models.yolo import DetectionModel

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["space_depth_n", "yolov5n"]


def run_one(cfg: str, imgsz: int, epochs: int, seed: int, project: Path) -> dict:
    name = f"{cfg}_{imgsz}_s{seed}"
    args = train.parse_args(["--cfg", f"{cfg}.yaml", "--imgsz", str(imgsz), "--epochs", str(epochs), "--seed",
                             str(seed), "--project", str(project), "--name", name, "--exist-ok", "--device", "cpu",
                             "--patience", "0", "--no-amp"])  # fp32 on every CPU (docs/benchmarks/spd-vs-strided.md)
    t0 = time.time()
    result = train.train(args)
    minutes = (time.time() - t0) / 60
    with open(project / name / "results.csv") as f:
        rows = list(csv.DictReader(f))
    model = DetectionModel(f"{cfg}.yaml", nc=6)
    latency = measure(model.for_inference(), torch.rand(1, 3, imgsz, imgsz), repeats=10)
    coco = result.get("coco", {})
    return {"cfg": cfg, "imgsz": imgsz, "seed": seed, "AP": coco.get("AP", 0.0), "AP50": coco.get("AP50", 0.0),
            "AP_S": coco.get("AP_S", 0.0), "AP_M": coco.get("AP_M", 0.0),
            "params": count_parameters(DetectionModel(f"{cfg}.yaml", nc=6)),
            "gflops": count_gflops(DetectionModel(f"{cfg}.yaml", nc=6), imgsz), "latency_ms": latency,
            "train_min": minutes, "ap_s_curve": [float(r["coco/AP_S"]) for r in rows]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 128])
    p.add_argument("--epochs", type=int, nargs="+", default=[40, 120], help="one per size, or one for all")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--project", default=str(ROOT / "runs" / "spd_vs_strided"))
    args = p.parse_args()
    torch.set_num_threads(2)
    project = Path(args.project)
    if len(args.epochs) not in (1, len(args.sizes)):
        raise SystemExit("--epochs: give one value, or one per --sizes value")
    epochs = dict(zip(args.sizes, args.epochs * len(args.sizes) if len(args.epochs) == 1 else args.epochs))
    results = [run_one(cfg, size, epochs[size], seed, project)
               for size in args.sizes for seed in args.seeds for cfg in MODELS]

    lines = ["Embedded small-object set (240 train / 60 val), from scratch, hyp.quick.yaml, batch 16, "
             f"seeds {args.seeds}; COCO figures of best.pt on val (areas in original pixels); "
             "latency: batch 1, fused, 2 threads.", "",
             "| model | input | epochs | AP | AP50 | AP_S | AP_M | params | GFLOPs | CPU latency (ms) "
             "| training (min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['cfg']} | {r['imgsz']} | {epochs[r['imgsz']]} | {r['AP']:.3f} | {r['AP50']:.3f} | "
                     f"{r['AP_S']:.3f} | {r['AP_M']:.3f} | {r['params']:,} | {r['gflops']:.2f} | "
                     f"{r['latency_ms']:.0f} | {r['train_min']:.1f} |")
    table = "\n".join(lines)
    (project / "results.md").write_text(table + "\n")
    print(table)

    plot_per_size(results, args.sizes, "ap_s_curve", "AP_S", project / "ap_s.png")
    print(f"wrote {project / 'results.md'} and {project / 'ap_s.png'}")


if __name__ == "__main__":
    main()
