"""What a validation costs besides inference: NMS at conf 0.001 on an untrained model, and pycocotools on a
large val set. Same process, 2 threads.

    scripts/env.sh python benchmarks/validation_cost.py          # about 2 minutes

1. NMS (validation settings: conf 0.001, IoU 0.6, multi-label, 300 kept) per image on the raw predictions of
   16 coco128 val2017 images at 640: a freshly initialised space_depth_n and the trained yolov5n. (The fresh
   model's head biases start at YOLOv5's priors, objectness ~0.01 and class ~0.6/nc, so its scores sit
   below conf 0.001 and NMS has nearly nothing to keep: the first epochs are not NMS's worst case; a partly
   trained model with many boxes just above the threshold is, which the trained row approaches.)
2. The COCO scorer (with the three tiny-object bins this project adds) on a synthetic COCO-sized set: 5000
   images, 7 objects and 100 detections each, 80 classes — what one full evaluation of COCO val2017 costs per
   epoch. pycocotools (before) and faster-coco-eval (the default since #31, the same figures), alternating,
   --rounds times each; the figures of the two are compared too.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import median_ms
from models.loading import load_model
from models.yolo import DetectionModel
from utils.boxes import non_max_suppression
from utils.data.augmentations import letterbox
from utils.data.images import read_rgb
from utils.detection.evaluator import run_cocoeval

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def nms_ms(model: torch.nn.Module, images: torch.Tensor) -> tuple[float, float]:
    with torch.inference_mode():
        predictions = model(images)
    kept = non_max_suppression(predictions, 0.001, 0.6, multi_label=True, max_det=300)
    ms = median_ms(lambda: non_max_suppression(predictions, 0.001, 0.6, multi_label=True, max_det=300), 3)
    return ms / len(images), float(np.mean([len(k) for k in kept]))


def synthetic_coco(n_images: int, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    images, annotations, predictions = [], [], []
    for i in range(n_images):
        images.append({"id": i, "width": 640, "height": 480})
        for _ in range(7):
            x, y, w, h = rng.uniform(0, 400), rng.uniform(0, 300), rng.uniform(4, 200), rng.uniform(4, 150)
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(rng.integers(80)),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        for _ in range(100):
            x, y, w, h = rng.uniform(0, 400), rng.uniform(0, 300), rng.uniform(4, 200), rng.uniform(4, 150)
            predictions.append({"image_id": i, "category_id": int(rng.integers(80)), "bbox": [x, y, w, h],
                                "score": float(rng.uniform())})
    truth = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in range(80)]}
    return truth, predictions


def coco_seconds(truth: dict, predictions: list[dict], evaluator: str) -> tuple[float, dict]:
    start = time.perf_counter()
    figures, _ = run_cocoeval(truth, predictions, [im["id"] for im in truth["images"]], evaluator)
    return time.perf_counter() - start, figures


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--coco-images", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(2)
    files = sorted((SHARED / "data" / "coco128" / "images" / "val2017").glob("*.jpg"))[:16]
    if files:
        batch = np.stack([letterbox(read_rgb(str(f)), (640, 640))[0].transpose(2, 0, 1) for f in files])
        images = torch.from_numpy(batch).float().div(255).contiguous(memory_format=torch.channels_last)
        torch.manual_seed(0)
        fresh = DetectionModel("space_depth_n.yaml", nc=80).for_inference()
        ms, kept = nms_ms(fresh, images)
        print(f"NMS, untrained space_depth_n, 640, conf 0.001: {ms:.1f} ms/image ({kept:.0f} boxes kept per image)")
        ms, kept = nms_ms(load_model(SHARED / "weights" / "yolov5n.pt").for_inference(), images)
        print(f"NMS, trained yolov5n, 640, conf 0.001: {ms:.1f} ms/image ({kept:.0f} boxes kept per image)")
    else:
        print(f"{SHARED}: coco128 not found, NMS part skipped")
    truth, predictions = synthetic_coco(args.coco_images)
    times: dict[str, list[float]] = {"pycocotools": [], "faster-coco-eval": []}
    figures = {}
    for _ in range(args.rounds):
        for name in times:
            seconds, figures[name] = coco_seconds(truth, predictions, name)
            times[name].append(seconds)
    for name, values in times.items():
        print(f"{name} with the tiny bins, {args.coco_images} images x 100 detections: "
              + ", ".join(f"{v:.1f} s" for v in values) + f" ({1000 * min(values) / args.coco_images:.1f} ms/image)")
    ratio = min(times["faster-coco-eval"]) / min(times["pycocotools"])
    gap = max(abs(figures["pycocotools"][k] - figures["faster-coco-eval"][k]) for k in figures["pycocotools"]
              if not np.isnan(figures["pycocotools"][k]))
    print(f"faster-coco-eval / pycocotools: {ratio:.3f} of the time; largest figure difference {gap:.2e}")

if __name__ == "__main__":
    main()
