"""Mosaic training-loader throughput, ours vs the reference implementation (PyPI yolov5==7.0.14), same run.

    scripts/env.sh python benchmarks/loader.py            # coco128 train2017 from ../shared, 640, batch 16

Both loaders: mosaic 1.0, random affine, HSV, left-right flip (the hyp.scratch values), no RAM cache, at 640,
batch 16, with 0 and 2 workers; two passes over the images, the first batch (worker start-up) not timed.
The reference's albumentations stage is off in its environment (its albumentations-1.x call fails on 2.x,
which it reports and skips), so ours runs with albumentations off as well for the ratio, and on for
information. The reference gets a copy of the data because it writes .cache files next to the labels.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
import yaml

from benchmarks.timing import images_per_second
from utils.data.dataset import YoloDataset
from utils.data.loaders import create_dataloader
from utils.data.scan import scan_dataset

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SCRIPT = r"""
import json, sys, logging
logging.disable(logging.CRITICAL)
import torch
torch.set_num_threads(2)
from yolov5.utils.dataloaders import create_dataloader
images, hyp, imgsz, batch, workers, passes, root = json.loads(sys.argv[1])
loader, dataset = create_dataloader(images, imgsz, batch, 32, hyp=hyp, augment=True, cache=False, rect=False,
                                    workers=workers, shuffle=True, seed=0)
sys.path.insert(0, root)
from benchmarks.timing import images_per_second
print(json.dumps({"images_per_s": images_per_second(loader, passes)}))
"""


def ours(images: str, hyp: dict, imgsz: int, batch: int, workers: int, passes: int) -> float:
    scan = scan_dataset(images, 80)
    dataset = YoloDataset(scan, imgsz, batch, augment=True, hyp=hyp)
    loader = create_dataloader(dataset, batch, workers, shuffle=True)
    return images_per_second(loader, passes, before_pass=loader.set_epoch)


def reference(python: str, images: str, hyp: dict, imgsz: int, batch: int, workers: int, passes: int) -> float:
    args = json.dumps([images, hyp, imgsz, batch, workers, passes, str(ROOT)])
    out = subprocess.run([python, "-c", REFERENCE_SCRIPT, args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the reference loader failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def _reference_python() -> str:
    return subprocess.run([str(ROOT / "benchmarks" / "reference_env.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


def compare(workers: list[int], data: Path = ROOT.parent / "shared" / "data" / "coco128", imgsz: int = 640,
            batch: int = 16, passes: int = 2) -> list[tuple[int, float, float, float]]:
    """Per worker count: (workers, ours without albumentations, ours with it, reference) in images/s."""
    torch.set_num_threads(2)
    hyp = yaml.safe_load((ROOT / "configs" / "hyp.scratch.yaml").read_text())
    hyp.update(copy_paste=0.0)
    python = _reference_python()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "coco128"
        shutil.copytree(Path(data) / "images" / "train2017", copy / "images" / "train2017")
        shutil.copytree(Path(data) / "labels" / "train2017", copy / "labels" / "train2017")
        images = str(copy / "images" / "train2017")
        for w in workers:
            ref = reference(python, images, hyp, imgsz, batch, w, passes)
            plain = ours(images, {**hyp, "albumentations": 0.0}, imgsz, batch, w, passes)
            full = ours(images, hyp, imgsz, batch, w, passes)
            rows.append((w, plain, full, ref))
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "coco128"))
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--passes", type=int, default=2)
    args = p.parse_args()
    print(f"mosaic loader, coco128 train2017 ({args.imgsz}, batch {args.batch}, {args.passes} passes), images/s")
    print("| workers | ours (no albumentations) | ours (albumentations on) | reference | ratio |")
    print("|---:|---:|---:|---:|---:|", flush=True)
    for w, plain, full, ref in compare(args.workers, Path(args.data), args.imgsz, args.batch, args.passes):
        print(f"| {w} | {plain:.1f} | {full:.1f} | {ref:.1f} | {plain / ref:.2f} |", flush=True)


if __name__ == "__main__":
    main()
