"""Runs inside the ultralytics peer environment (benchmarks/ultralytics_env.sh), never the project's: trains
a model from scratch with ultralytics' own defaults and writes its val-split predictions as JSON for
benchmarks/hit_uav.py to score with this project's evaluator.

The dataset is read through a folder of symbolic links (ultralytics writes .cache files beside the labels,
and nothing may be written into ../shared); plots are off (they would fetch a font) and so are its online
features.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml


def linked_dataset(data: Path, work: Path) -> Path:
    """images/<split> and labels/<split> as links inside ``work``, and a dataset YAML pointing there."""
    config = yaml.safe_load(data.read_text())
    root = (data.parent / config.get("path", ".")).resolve()
    out = {"path": str(work), "names": config["names"]}
    for split in ("train", "val"):
        images = (root / config[split]).resolve()
        labels = Path(str(images).replace(f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"))
        for kind, source in (("images", images), ("labels", labels)):
            link = work / kind / split
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source, target_is_directory=True)
        out[split] = f"images/{split}"
    path = work / "data.yaml"
    path.write_text(yaml.safe_dump(out, sort_keys=False))
    return path


def costs(weights: str, imgsz: int, repeats: int) -> dict:
    """Parameters, GFLOPs (torch's FLOP counter, 2 per multiply-add, as ours) and batch-1 fp32 latency of the
    fused network alone (no pre- or post-processing, as ours), 2 threads, median of ``repeats``."""
    import statistics
    import time

    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from ultralytics import YOLO

    torch.set_num_threads(2)
    model = YOLO(weights).model.float().eval()
    params = sum(p.numel() for p in model.parameters())
    model = model.fuse()
    x = torch.zeros(1, 3, imgsz, imgsz)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(x)
        for _ in range(5):
            model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return {"params": params, "gflops": counter.get_total_flops() / 1e9, "latency_ms": statistics.median(times) * 1000}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--costs", help="print the costs of these weights as JSON and stop")
    p.add_argument("--repeats", type=int, default=30)
    for name in ("--data", "--model", "--folder", "--out"):
        p.add_argument(name)
    for name in ("--epochs", "--imgsz", "--batch", "--workers", "--seed"):
        p.add_argument(name, type=int)
    args = p.parse_args()
    os.environ["YOLO_OFFLINE"] = "1"
    if args.costs:
        print(json.dumps(costs(args.costs, args.imgsz, args.repeats)))
        return
    from ultralytics import YOLO, settings

    online = ("sync", "hub", "wandb", "mlflow", "tensorboard", "clearml", "comet", "dvc", "neptune", "raytune")
    settings.update({k: False for k in online if k in settings})  # the keys differ between versions
    folder = Path(args.folder).resolve()
    data = linked_dataset(Path(args.data), folder / "data")
    weights = folder / "train" / "weights"
    if (weights / "last.pt").exists() and not (weights / "best.pt").exists():
        model = YOLO(str(weights / "last.pt"))
        model.train(resume=True)
    elif not (weights / "best.pt").exists():
        model = YOLO(args.model)
        model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=args.workers,
                    seed=args.seed, device="cpu", pretrained=False, plots=False, project=str(folder), name="train",
                    exist_ok=True, amp=False)
    best = YOLO(str(weights / "best.pt"))
    val_images = sorted((folder / "data" / "images" / "val").iterdir())
    images: dict[str, list[list[float]]] = {}
    for start in range(0, len(val_images), 16):
        chunk = [str(f) for f in val_images[start:start + 16]]
        for path, result in zip(chunk, best.predict(chunk, imgsz=args.imgsz, conf=0.001, iou=0.6, max_det=300,
                                                    device="cpu", verbose=False)):
            boxes = result.boxes
            rows = [[*b, s, c] for b, s, c in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())]
            images[Path(path).name] = rows
    Path(args.out).write_text(json.dumps({"model": args.model, "images": images}))


if __name__ == "__main__":
    main()
