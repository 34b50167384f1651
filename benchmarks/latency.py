"""CPU inference latency of every model config (fused, eval, float32, batch 1): the model table of docs/models.md.

    scripts/env.sh python benchmarks/latency.py --imgsz 640 --threads 2
    scripts/env.sh python benchmarks/latency.py --configs yolo11n yolo11n_spd --ultralytics yolo11n --rounds 3

``--ultralytics NAME``: also ultralytics' own fused NAME (from its NAME.yaml, in its peer environment,
benchmarks/ultralytics_env.sh), measured in the same rounds, alternating with ours; the network alone on both
sides (no pre- or post-processing), the median of ``--repeats`` per round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch

from models.summary import count_gflops, count_parameters
from models.yolo import DetectionModel
from utils.memory import keep_freed_memory

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = ["space_depth_n", "space_depth_s", "space_depth_m", "space_depth_l", "yolov5n", "yolov5s", "yolov5m",
           "yolov5l", "yolov8n", "yolov8n_spd", "yolov8s", "yolov8s_spd", "yolo11n", "yolo11n_spd", "yolo11s",
           "yolo11s_spd"]


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
    p.add_argument("--ultralytics", nargs="*", default=[], help="ultralytics' own models to time beside ours")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    keep_freed_memory()  # as detect.py and val.py
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, args.imgsz, args.imgsz)
    peer = _peer_python() if args.ultralytics else None
    rows: dict[str, list[float]] = {}
    costs: dict[str, tuple[int, float]] = {}
    for _ in range(args.rounds):
        for name in args.configs:
            model = DetectionModel(f"{name}.yaml")
            costs[name] = (count_parameters(model), count_gflops(model, args.imgsz))
            rows.setdefault(name, []).append(measure(model.for_inference(), x, args.repeats))
        for name in args.ultralytics:
            out = subprocess.run([peer, str(ROOT / "benchmarks" / "ultralytics_worker.py"), "--costs", f"{name}.yaml",
                                  "--imgsz", str(args.imgsz), "--repeats", str(args.repeats)], capture_output=True,
                                 text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            costs[f"ultralytics {name}"] = (int(result["params"]), float(result["gflops"]))
            rows.setdefault(f"ultralytics {name}", []).append(float(result["latency_ms"]))
    print(f"| model | params | GFLOPs ({args.imgsz}) | CPU latency (ms, {args.threads} threads, batch 1; "
          f"{'per round' if args.rounds > 1 else 'median'}) |")
    print("|---|---:|---:|---:|")
    for name, times in rows.items():
        params, gflops = costs[name]
        print(f"| {name} | {params:,} | {gflops:.1f} | {' / '.join(f'{t:.0f}' for t in times)} |", flush=True)


def _peer_python() -> str:
    return subprocess.run([str(ROOT / "benchmarks" / "ultralytics_env.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


if __name__ == "__main__":
    main()
