"""ResNet18-SPD vs ResNet18 from scratch, same recipe, on the embedded low-resolution set at 32x32 and 16x16.

    scripts/env.sh python benchmarks/classify_spd_vs_strided.py     # about 30 minutes on 2 CPU cores

Both models train with hyp.classify_quick.yaml (AdamW), batch 64, the same seeds and epochs; reported: final top-1 and
top-5 on the val split (the kept best.pt), mean and spread over seeds, parameters, GFLOPs and CPU latency
(batch 1, 2 threads) at the input size, training time. Writes runs/classify_spd_vs_strided/results.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.latency import measure
from models.classification import ClassificationModel
from models.summary import count_gflops, count_parameters
from utils.classification.task import train_classifier
from utils.memory import keep_freed_memory

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["resnet18_spd", "resnet18"]


def run_one(cfg: str, imgsz: int, epochs: int, seed: int, project: Path) -> dict:
    t0 = time.time()
    result = train_classifier(model=f"{cfg}.yaml", imgsz=imgsz, epochs=epochs, seed=seed, project=str(project),
                              name=f"{cfg}_{imgsz}_s{seed}", exist_ok=True, device="cpu", patience=0)
    minutes = (time.time() - t0) / 60
    model = ClassificationModel(f"{cfg}.yaml", nc=10).eval()
    with torch.no_grad():
        latency = measure(model, torch.rand(1, 3, imgsz, imgsz), repeats=20)
    return {"cfg": cfg, "imgsz": imgsz, "seed": seed, "top1": result["top1"], "top5": result["top5"],
            "params": count_parameters(model), "gflops": count_gflops(model, imgsz), "latency_ms": latency,
            "train_min": minutes}


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(results: list[dict], epochs: dict[int, int], seeds: list[int]) -> str:
    lines = [f"Embedded lowres10 set (2000 train / 600 val, 10 classes), from scratch, hyp.classify_quick.yaml, "
             f"batch 64, seeds {seeds}; top-1/top-5 of best.pt on val (mean ± std over seeds); latency batch 1, "
             f"2 threads.", "",
             "| model | input | epochs | top-1 | top-5 | params | GFLOPs | CPU latency (ms) | training (min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sorted({r["imgsz"] for r in results}, reverse=True):
        for cfg in MODELS:
            runs = [r for r in results if r["cfg"] == cfg and r["imgsz"] == size]
            if runs:
                lines.append(f"| {cfg} | {size} | {epochs[size]} | {_spread([r['top1'] for r in runs])} | "
                             f"{_spread([r['top5'] for r in runs])} | {runs[0]['params']:,} | "
                             f"{runs[0]['gflops']:.3f} | {runs[0]['latency_ms']:.1f} | "
                             f"{statistics.mean(r['train_min'] for r in runs):.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 16])
    p.add_argument("--epochs", type=int, nargs="+", default=[6, 10], help="one per size, or one for all")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--project", default=str(ROOT / "runs" / "classify_spd_vs_strided"))
    args = p.parse_args()
    keep_freed_memory()
    torch.set_num_threads(2)
    epochs = dict(zip(args.sizes, args.epochs * len(args.sizes) if len(args.epochs) == 1 else args.epochs))
    project = Path(args.project)
    results = []
    for size in args.sizes:
        for seed in args.seeds:
            for cfg in MODELS:
                results.append(run_one(cfg, size, epochs[size], seed, project))
                (project / "results.md").write_text(table(results, epochs, args.seeds) + "\n")
    print(table(results, epochs, args.seeds))


if __name__ == "__main__":
    main()
