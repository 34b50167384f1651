"""Fine-tuned SPD vs fine-tuned YOLOv5: space_depth_n made exactly from the official yolov5n, and yolov5n
itself, fine-tuned with the same command on coco128 train2017 at low resolution, scored on coco128 val2017.

    scripts/env.sh python benchmarks/finetune_spd_vs_strided.py      # about 50 minutes on 2 CPU cores

Both start from the same function (the transfer is exact; an epoch-0 validation shows the same AP), then train
with configs/hyp.finetune.yaml, same seed, data, batch and epochs. Reported per run: the epoch-0 and final
(last epoch, EMA weights) COCO figures, AP_S and the tiny bins (< 8², 8-16², 16-32² px in original pixels),
AP_M, the epoch-to-epoch noise of AP over the last half of the run, cost (GFLOPs, CPU latency, training
time), and the cars found on ../shared/images/small-vehicles1.jpeg. Needs ../shared; writes
runs/finetune_spd_vs_strided/results.md and ap.png.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch

import train
from benchmarks.curves import plot_per_size
from benchmarks.latency import measure
from models.summary import count_gflops, count_parameters
from models.yolo import DetectionModel
from utils.detection.prediction import Detector
from utils.memory import keep_freed_memory

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS = ["space_depth_n", "yolov5n"]
FIGURES = ["AP", "AP50", "AP_S", "AP_vt", "AP_t", "AP_s16", "AP_M"]


def run_one(cfg: str, imgsz: int, epochs: int, seed: int, project: Path) -> dict:
    name = f"{cfg}_{imgsz}_s{seed}"
    args = train.parse_args(["--weights", str(SHARED / "weights" / "yolov5n.pt"), "--cfg", f"{cfg}.yaml",
                             "--data", str(SHARED / "data" / "coco128" / "coco128.yaml"), "--hyp",
                             "hyp.finetune.yaml", "--imgsz", str(imgsz), "--epochs", str(epochs), "--seed",
                             str(seed), "--project", str(project), "--name", name, "--exist-ok", "--device",
                             "cpu", "--patience", "0", "--val-first"])
    t0 = time.time()
    result = train.train(args)
    minutes = (time.time() - t0) / 60
    with open(project / name / "results.csv") as f:
        rows = list(csv.DictReader(f))
    start, last = rows[0], rows[-1]
    curve = [float(r["coco/AP"]) for r in rows]
    half = curve[len(curve) // 2:]
    noise = statistics.pstdev([b - a for a, b in zip(half, half[1:])]) if len(half) > 2 else float("nan")
    detector = Detector(project / name / "weights" / "last.pt", device="cpu", imgsz=640)
    found = detector.predict(str(SHARED / "images" / "small-vehicles1.jpeg"))[0]
    cars = sum(1 for d in found.to_list() if d["class"] == "car")
    model = DetectionModel(f"{cfg}.yaml")
    return {"cfg": cfg, "imgsz": imgsz, "seed": seed, "start": {k: float(start[f"coco/{k}"]) for k in FIGURES},
            "final": {k: float(last[f"coco/{k}"]) for k in FIGURES}, "noise": noise, "curve": curve,
            "n": {b: int(float(last[f"coco/n_{b}"])) for b in ("vt", "t", "s16")},
            "best_AP": float(result.get("coco", {}).get("AP", float("nan"))), "cars": cars,
            "params": count_parameters(model), "gflops": count_gflops(model, imgsz),
            "latency_ms": measure(DetectionModel(f"{cfg}.yaml").for_inference(), torch.rand(1, 3, imgsz, imgsz),
                                  repeats=10),
            "train_min": minutes}


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(results: list[dict], epochs: int, seeds: list[int]) -> str:
    lines = [f"coco128 train2017 -> val2017, from the official yolov5n (space_depth_n: exact transfer), "
             f"hyp.finetune.yaml, batch 16, {epochs} epochs, seeds {seeds}. Figures: pycocotools on val2017, "
             f"last epoch (EMA), mean ± std over seeds; 'start' is the epoch-0 validation.", "",
             "| model | input | start AP | AP | AP50 | AP_S | AP <8² | AP 8-16² | AP 16-32² | AP_M | AP noise "
             "(epoch to epoch) | cars on small-vehicles1 | params | GFLOPs | CPU latency (ms) | training (min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sorted({r["imgsz"] for r in results}, reverse=True):
        for cfg in MODELS:
            runs = [r for r in results if r["cfg"] == cfg and r["imgsz"] == size]
            if not runs:
                continue
            figures = " | ".join(_mean_std([r["final"][k] for r in runs]) for k in FIGURES)
            lines.append(f"| {cfg} | {size} | {_mean_std([r['start']['AP'] for r in runs])} | {figures} | "
                         f"{statistics.mean(r['noise'] for r in runs):.4f} | {runs[0]['cars']} | "
                         f"{runs[0]['params']:,} | {runs[0]['gflops']:.2f} | {runs[0]['latency_ms']:.0f} | "
                         f"{statistics.mean(r['train_min'] for r in runs):.1f} |")
    counts = results[0]["n"]
    lines += ["", f"Objects in val2017 per tiny bin: <8² {counts['vt']}, 8-16² {counts['t']}, 16-32² {counts['s16']}."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 256])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--project", default=str(ROOT / "runs" / "finetune_spd_vs_strided"))
    args = p.parse_args()
    if not (SHARED / "weights" / "yolov5n.pt").is_file():
        raise SystemExit(f"needs {SHARED}/weights/yolov5n.pt and {SHARED}/data/coco128")
    keep_freed_memory()
    torch.set_num_threads(2)
    project = Path(args.project)
    results = []
    for size in args.sizes:
        for seed in args.seeds:
            for cfg in MODELS:
                results.append(run_one(cfg, size, args.epochs, seed, project))
                text = table(results, args.epochs, args.seeds)
                (project / "results.md").write_text(text + "\n")  # after every run: partial results survive
    print(text)

    plot_per_size(results, args.sizes, "curve", "COCO AP on coco128 val2017 (0 = start)", project / "ap.png",
                  first_epoch=0)
    print(f"wrote {project / 'results.md'} and {project / 'ap.png'}")


if __name__ == "__main__":
    main()
