"""CPU inference latency of every model config (fused, eval, float32, batch 1): the README's model table.

    scripts/env.sh python benchmarks/latency.py --imgsz 640 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from models.summary import count_gflops, count_parameters
from models.yolo import DetectionModel
from utils.memory import keep_freed_memory

CONFIGS = ["space_depth_n", "space_depth_s", "space_depth_m", "space_depth_l", "yolov5n", "yolov5s", "yolov5m",
           "yolov5l"]


def measure(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--configs", nargs="+", default=CONFIGS)
    args = p.parse_args()
    keep_freed_memory()  # as detect.py and val.py
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, args.imgsz, args.imgsz)
    print(f"| model | params | GFLOPs ({args.imgsz}) | CPU latency (ms, {args.threads} threads, batch 1) |")
    print("|---|---:|---:|---:|")
    for name in args.configs:
        model = DetectionModel(f"{name}.yaml")
        params, gflops = count_parameters(model), count_gflops(model, args.imgsz)
        model.for_inference()
        ms = measure(model, x, args.repeats)
        print(f"| {name} | {params:,} | {gflops:.1f} | {ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
