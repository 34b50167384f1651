"""Whole training runs, ours against the reference's train.py (PyPI yolov5==7.0.14) and ultralytics (YOLO11n),
each in a fresh process, several rounds, alternating, in one benchmark run.

    scripts/env.sh python benchmarks/whole_run.py                 # 320 and 640, 3 rounds, about 50 min on 2 cores
    scripts/env.sh python benchmarks/whole_run.py --sizes 320 --commands ours-yolov5n reference

Commands: ours on yolov5n.yaml and on space_depth_n.yaml, the reference on yolov5n.yaml (all three from
scratch: 3 epochs of coco128 train2017, validated on val2017 every epoch, batch 16, 2 loader workers,
configs/hyp.scratch.yaml with the albumentations stage off, because the reference's fails on albumentations 2.x
and skips itself, plus the two keys only the reference reads; AutoAnchor and plots off), and ultralytics'
YOLO11n from its yolo11n.yaml with its own defaults (its hyp, its augmentation), plots off, the same epochs,
batch, workers and data. ``--commands ours-yolo11n ultralytics``: the same YOLO11n trained here with its own
default recipe (hyp.anchor_free.yaml: ultralytics' defaults), the like-for-like pair.
Wall time is from process start to exit (imports, the final checkpoint and evaluation
included). Every run gets a fresh copy of the data (the peers write .cache files beside the labels) and an empty
cache folder, so each starts from the same state. Each round runs every command once, the order rotating from
round to round, so a machine that drifts slows every command alike. Reported per command: each round's
seconds, the median and the spread (half the range, in % of the median); ours / reference and ours /
ultralytics in every round; each run's final mAP50-95 (the last epoch's validation), which shows that no side
skips work (three epochs from scratch leave every model near zero). Ours' phase tables, per round, say where a
slower round lost its time, and each run's major page faults (pages read from disk) show a run that
found its libraries outside the page cache; `--warmup` runs each command once, untimed, before round 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
COMMANDS = ("ours-yolov5n", "ours-space_depth_n", "ours-yolo11n", "reference", "ultralytics")
DEFAULT_COMMANDS = ("ours-yolov5n", "ours-space_depth_n", "reference", "ultralytics")


def _peer_python(script: str, variable: str) -> str:
    return os.environ.get(variable) or subprocess.run(
        [str(ROOT / "benchmarks" / script)], capture_output=True, text=True, check=True).stdout.strip()


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


def _final_map(results_csv: Path, column: str) -> float:
    with open(results_csv) as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return float(rows[-1][column])


def _phases(table: Path) -> dict[str, float]:
    """Seconds per phase from ours' time_per_phase.txt."""
    if not table.exists():
        return {}
    return {m[1].strip(): float(m[2]) for m in re.finditer(r"^\s+(\S.*?)\s+([\d.]+) s\s", table.read_text(), re.M)}


@dataclass
class Run:
    command: str
    imgsz: int
    round: int
    seconds: float
    final_map: float
    phases: dict[str, float] = field(default_factory=dict)
    major_faults: int = 0


def _command(name: str, imgsz: int, epochs: int, run_dir: Path, peers: dict[str, str]
             ) -> tuple[list[str], dict[str, str], Path, str]:
    """(argv, environment, results.csv, its mAP50-95 column) of one command on a fresh copy of the data."""
    data_yaml, hyp_yaml = _prepare(run_dir)
    env = {**os.environ, "YOLOV5_SPD_CACHE": str(run_dir / "cache")}
    common = ["--data", str(data_yaml), "--epochs", str(epochs), "--batch-size", "16", "--imgsz", str(imgsz),
              "--workers", "2", "--noautoanchor", "--device", "cpu", "--exist-ok", "--noplots", "--project",
              str(run_dir), "--name", "run"]
    if name == "ours-yolo11n":  # the anchor-free family's own recipe (hyp.anchor_free.yaml), as ultralytics' own
        return ([sys.executable, str(ROOT / "train.py"), "--cfg", "yolo11n.yaml", *common], env,
                run_dir / "run" / "results.csv", "metrics/mAP_0.5:0.95")
    common = [*common, "--hyp", str(hyp_yaml)]
    if name.startswith("ours-"):
        cfg = name.removeprefix("ours-") + ".yaml"
        return ([sys.executable, str(ROOT / "train.py"), "--cfg", cfg, *common], env,
                run_dir / "run" / "results.csv", "metrics/mAP_0.5:0.95")
    bare = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # peers must not see our modules
    if name == "reference":  # its checkpoints unpickle its own models.yolo
        return ([peers["reference"], "-m", "yolov5.train", "--cfg", "yolov5n.yaml", "--weights", "", *common],
                {**bare, **_reference_env(run_dir)}, run_dir / "run" / "results.csv", "metrics/mAP_0.5:0.95")
    yolo = str(Path(peers["ultralytics"]).parent / "yolo")
    return ([yolo, "detect", "train", "model=yolo11n.yaml", f"data={data_yaml}", f"epochs={epochs}", "batch=16",
             f"imgsz={imgsz}", "workers=2", "device=cpu", "plots=False", "pretrained=False", f"project={run_dir}",
             "name=run", "exist_ok=True"],
            {**bare, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(run_dir / "ultralytics_config")},
            run_dir / "run" / "results.csv", "metrics/mAP50-95(B)")


def _timed(cmd: list[str], env: dict, log: Path) -> tuple[float, int]:
    """Wall seconds and major page faults (pages read from disk: code and data not in the page cache) of one
    command and every process it waited for."""
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_majflt
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{Path(cmd[0]).name} {cmd[1]} failed (exit {done.returncode}); its log: {log}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_majflt - faults


def run_once(name: str, imgsz: int, epochs: int, round_: int, work: Path, peers: dict[str, str]) -> Run:
    run_dir = work / f"{name}_{imgsz}_r{round_}"
    run_dir.mkdir(parents=True)
    cmd, env, results_csv, column = _command(name, imgsz, epochs, run_dir, peers)
    seconds, faults = _timed(cmd, env, run_dir / "log.txt")
    run = Run(name, imgsz, round_, seconds, _final_map(results_csv, column),
              _phases(run_dir / "run" / "time_per_phase.txt"), faults)
    label = "warm-up" if round_ == 0 else f"round {round_}"
    print(f"  {label}, {name} at {imgsz}: {seconds:.1f} s, {faults} major page faults, final mAP50-95 "
          f"{run.final_map:.4f}", flush=True)
    return run


def spread(values: list[float]) -> float:
    """Half the range, as a fraction of the median."""
    return (max(values) - min(values)) / 2 / statistics.median(values)


def report(runs: list[Run], commands: list[str], sizes: list[int]) -> list[str]:
    lines = ["| input | command | seconds per round | median | spread | major page faults per round | "
             "final mAP50-95 per round |", "|---:|---|---|---:|---:|---|---|"]
    for imgsz in sizes:
        for name in commands:
            mine = sorted((r for r in runs if r.command == name and r.imgsz == imgsz), key=lambda r: r.round)
            times = [r.seconds for r in mine]
            lines.append(f"| {imgsz} | {name} | {' / '.join(f'{t:.1f}' for t in times)} | "
                         f"{statistics.median(times):.1f} | ±{spread(times) * 100:.1f} % | "
                         f"{' / '.join(str(r.major_faults) for r in mine)} | "
                         f"{' / '.join(f'{r.final_map:.4f}' for r in mine)} |")
    lines += ["", "| input | ratio | per round | worst |", "|---:|---|---|---:|"]
    for imgsz in sizes:
        for ours in (c for c in commands if c.startswith("ours-")):
            for peer in (c for c in commands if not c.startswith("ours-")):
                pairs = {r.round: r.seconds for r in runs if r.command == ours and r.imgsz == imgsz}
                peer_times = {r.round: r.seconds for r in runs if r.command == peer and r.imgsz == imgsz}
                ratios = [pairs[k] / peer_times[k] for k in sorted(pairs)]
                lines.append(f"| {imgsz} | {ours} / {peer} | {' / '.join(f'{x:.2f}' for x in ratios)} | "
                             f"{max(ratios):.2f} |")
    return lines


def phase_report(runs: list[Run]) -> list[str]:
    """Ours' seconds per phase in each round, so a slower round shows where its time went."""
    lines = []
    for key in sorted({(r.command, r.imgsz) for r in runs if r.phases}):
        mine = sorted((r for r in runs if (r.command, r.imgsz) == key), key=lambda r: r.round)
        lines += ["", f"{key[0]} at {key[1]}: seconds per phase, round by round",
                  "| phase | " + " | ".join(f"round {r.round}" for r in mine) + " | spread |",
                  "|---|" + "---:|" * (len(mine) + 1)]
        for phase in mine[0].phases:
            values = [r.phases.get(phase, 0.0) for r in mine]
            lines.append(f"| {phase} | " + " | ".join(f"{v:.1f}" for v in values) +
                         f" | ±{spread(values) * 100 if statistics.median(values) else 0:.0f} % |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(DEFAULT_COMMANDS),
                   help="ours-yolo11n: YOLO11n trained here with its default recipe, against --commands ultralytics "
                   "(the same model and recipe in ultralytics' own trainer)")
    p.add_argument("--keep", action="store_true", help="keep the runs' folders (printed)")
    p.add_argument("--warmup", action="store_true", help="one untimed run of each command first, so that no "
                   "round pays for reading a command's libraries from disk into the page cache")
    args = p.parse_args()
    peers = {}
    if "reference" in args.commands:
        peers["reference"] = _peer_python("reference_env.sh", "REFERENCE_PYTHON")
    if "ultralytics" in args.commands:
        peers["ultralytics"] = _peer_python("ultralytics_env.sh", "ULTRALYTICS_PYTHON")
    work = Path(tempfile.mkdtemp(prefix="whole_run_"))
    runs = []
    try:
        for imgsz in args.sizes:
            if args.warmup:
                for name in args.commands:
                    run_once(name, imgsz, 1, 0, work, peers)
            for round_ in range(1, args.rounds + 1):
                shift = (round_ - 1) % len(args.commands)
                for name in args.commands[shift:] + args.commands[:shift]:
                    runs.append(run_once(name, imgsz, args.epochs, round_, work, peers))
    finally:
        if args.keep:
            print(f"runs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ncoco128 train2017 -> val2017, from scratch, {args.epochs} epochs, batch 16, 2 workers, CPU, "
          f"{args.rounds} rounds")
    print("\n".join(report(runs, args.commands, args.sizes) + phase_report(runs)))


if __name__ == "__main__":
    main()
