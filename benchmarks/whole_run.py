"""A whole training run, ours against the reference's train.py (PyPI yolov5==7.0.14), fresh processes, same run.

    scripts/env.sh python benchmarks/whole_run.py                 # 320 and 640, about 30 minutes on 2 cores

Both train yolov5n.yaml from scratch on coco128 train2017 and validate on val2017 every epoch: 3 epochs,
batch 16, 2 loader workers, the same hyp (configs/hyp.scratch.yaml with the albumentations stage off, because
the reference's fails on albumentations 2.x and skips itself; plus the two keys only the reference reads),
AutoAnchor off, plots off (--noplots on both). Wall time is from process start to exit (the final checkpoint
and evaluation included); each side starts with an empty cache and a fresh copy of the data (the reference
writes .cache files beside the labels), so the second size finds both label caches warm. Each run's final
mAP50-95 (the last epoch's validation, the EMA model) is printed beside its time: they must agree within
the noise of a 3-epoch run from scratch (near zero at this length), and ours' per-phase table says where
its time went.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _reference_python() -> str:
    return os.environ.get("REFERENCE_PYTHON") or subprocess.run(
        [str(ROOT / "benchmarks" / "reference_env.sh")], capture_output=True, text=True, check=True).stdout.strip()


def _prepare(work: Path) -> tuple[Path, Path]:
    """A fresh copy of coco128 with a dataset YAML, and the shared hyp file."""
    data = work / "coco128"
    shutil.copytree(SHARED / "data" / "coco128", data, ignore=shutil.ignore_patterns("*.cache", "annotations"))
    names = yaml.safe_load((SHARED / "data" / "coco128" / "coco128.yaml").read_text())["names"]
    data_yaml = work / "coco128.yaml"
    data_yaml.write_text(yaml.safe_dump({"path": str(data), "train": "images/train2017", "val": "images/val2017",
                                         "names": names}))
    hyp = yaml.safe_load((ROOT / "configs" / "hyp.scratch.yaml").read_text())
    hyp.update(albumentations=0.0, iou_t=0.2, copy_paste=0.0)
    hyp_yaml = work / "hyp.yaml"
    hyp_yaml.write_text(yaml.safe_dump(hyp))
    return data_yaml, hyp_yaml


def _reference_env(work: Path) -> dict[str, str]:
    """What the reference's train.py needs to run offline on torch >= 2.6: a font where it would download
    Arial.ttf (a copy of matplotlib's DejaVu Sans in a private config folder), no Hugging Face lookups, and
    torch.load's old default for its own checkpoints (its strip_optimizer unpickles model objects)."""
    import matplotlib

    config = work / "reference_config"
    config.mkdir(exist_ok=True)
    shutil.copyfile(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", config / "Arial.ttf")
    return {"YOLOV5_CONFIG_DIR": str(config), "HF_HUB_OFFLINE": "1", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
            "YOLOv5_VERBOSE": "False"}


def _final_map(results_csv: Path) -> float:
    with open(results_csv) as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return float(rows[-1]["metrics/mAP_0.5:0.95"])


def _timed(cmd: list[str], env: dict, log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{cmd[1]} failed (exit {done.returncode}); its log: {log}")
    return seconds


def run_pair(imgsz: int, epochs: int, work: Path, reference_python: str | None) -> dict:
    data_yaml, hyp_yaml = _prepare(work / f"data{imgsz}")
    common = ["--data", str(data_yaml), "--hyp", str(hyp_yaml), "--epochs", str(epochs), "--batch-size", "16",
              "--imgsz", str(imgsz), "--workers", "2", "--noautoanchor", "--device", "cpu", "--exist-ok", "--noplots"]
    env = {**os.environ, "YOLOV5_SPD_CACHE": str(work / "cache")}
    ours_dir = work / f"ours{imgsz}"
    ours = _timed([sys.executable, str(ROOT / "train.py"), "--cfg", "yolov5n.yaml", *common, "--project",
                   str(work), "--name", ours_dir.name], env, work / f"ours{imgsz}.log")
    phases = (ours_dir / "time_per_phase.txt").read_text() if (ours_dir / "time_per_phase.txt").exists() else ""
    row = {"imgsz": imgsz, "ours_s": ours, "ours_map": _final_map(ours_dir / "results.csv"), "phases": phases,
           "ref_s": float("nan"), "ref_map": float("nan")}
    if reference_python is None:
        return row
    ref_dir = work / f"ref{imgsz}"
    reference = _timed([reference_python, "-m", "yolov5.train", "--cfg", "yolov5n.yaml", "--weights", "",
                        *common, "--project", str(work), "--name", ref_dir.name],
                       {**{k: v for k, v in env.items() if k != "PYTHONPATH"}, **_reference_env(work)},
                       work / f"ref{imgsz}.log")  # without our PYTHONPATH: its checkpoints unpickle its models.yolo
    return {**row, "ref_s": reference, "ref_map": _final_map(ref_dir / "results.csv")}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the runs' folders (printed)")
    p.add_argument("--ours-only", action="store_true", help="skip the reference (while working on ours)")
    args = p.parse_args()
    reference_python = None if args.ours_only else _reference_python()
    work = Path(tempfile.mkdtemp(prefix="whole_run_"))
    rows = []
    try:
        for imgsz in args.sizes:
            r = run_pair(imgsz, args.epochs, work, reference_python)
            rows.append(r)
            print(f"\n{imgsz} px, ours:\n{r['phases']}")
    finally:
        if args.keep:
            print(f"runs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ncoco128 train2017 -> val2017, yolov5n from scratch, {args.epochs} epochs, batch 16, 2 workers, CPU")
    print("| input | ours (s) | reference (s) | ours / reference | ours mAP50-95 | reference mAP50-95 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['imgsz']} | {r['ours_s']:.0f} | {r['ref_s']:.0f} | {r['ours_s'] / r['ref_s']:.2f} | "
              f"{r['ours_map']:.4f} | {r['ref_map']:.4f} |")


if __name__ == "__main__":
    main()
