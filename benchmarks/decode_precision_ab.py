"""Do bf16 training and reduced JPEG decoding keep AP? Paired runs that differ in one setting, same seed.

    scripts/env.sh python benchmarks/decode_precision_ab.py               # about 35 minutes on 2 cores
    scripts/env.sh python benchmarks/decode_precision_ab.py --only "main job" --arms default --seeds 0 1 2

1. coco128 fine-tune (official yolov5n, train2017 -> val2017, 320 px, 3 epochs, hyp.finetune): the default
   (bf16 where the CPU has it, reduced decoding) against fp32 (--no-amp) and against fp32 with full decoding
   (--exact-decode): coco128's 640-px JPEGs decode at 1/2 scale at 320.
2. The main job (the embedded set, space_depth_n, 30 epochs at 256) with and without bf16 (its 320-384 px
   images are under twice 256, so decoding is the same).
Each run is a fresh process; the table gives COCO AP / AP50 / AP_S of its best.pt and its wall time. Without
native bf16 the CPU runs fp32 in both arms (printed first), and the bf16 rows say so.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

FINETUNE = ["--weights", str(SHARED / "weights" / "yolov5n.pt"), "--data", str(SHARED / "data" / "coco128" /
            "coco128.yaml"), "--imgsz", "320", "--epochs", "3", "--noautoanchor"]
VARIANTS = {
    "fine-tune": [("bf16 + reduced decoding (default)", []), ("fp32 + reduced decoding", ["--no-amp"]),
                  ("fp32 + full decoding", ["--no-amp", "--exact-decode"])],
    "main job": [("bf16 (default)", []), ("fp32", ["--no-amp"])],
}


def run(args: list[str], project: Path, name: str) -> dict:
    """One training run in a fresh process: its precision line, best.pt's final COCO figures, wall minutes."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *args, "--project", str(project), "--name", name,
                           "--device", "cpu"], capture_output=True, text=True, cwd=ROOT)
    minutes = (time.perf_counter() - start) / 60
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    lines = (done.stdout + done.stderr).splitlines()
    precision = next((line.split("mixed precision: ", 1)[1] for line in lines if "mixed precision: " in line), "?")
    final = next(line for line in reversed(lines) if "best.pt: mAP50" in line or "last.pt: mAP50" in line)
    figures = final.split("| COCO ", 1)[1].split()  # AP x AP50 y AP_S z
    coco = {figures[i]: float(figures[i + 1]) for i in range(0, len(figures) - 1, 2)}
    return {"precision": precision.split(";")[0], "minutes": minutes, **coco}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=list(VARIANTS), default=None)
    p.add_argument("--arms", nargs="+", default=None, help="run only the settings whose label has one of these words")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    options = p.parse_args()
    from utils.precision import cpu_precision_line

    print(cpu_precision_line(), flush=True)
    print("| experiment | setting | seed | precision used | AP | AP50 | AP_S | wall (min) |")
    print("|---|---|---:|---|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for experiment, variants in VARIANTS.items():
            if options.only and experiment != options.only:
                continue
            base = FINETUNE if experiment == "fine-tune" else []
            for k, (label, extra) in enumerate(variants):
                if options.arms and not any(word in label for word in options.arms):
                    continue
                for seed in options.seeds:
                    name = f"{experiment.replace(' ', '_')}{k}_{seed}"
                    r = run([*base, *extra, "--seed", str(seed)], Path(tmp), name)
                    print(f"| {experiment} | {label} | {seed} | {r['precision']} | {r['AP']:.4f} | "
                          f"{r['AP50']:.4f} | {r['AP_S']:.4f} | {r['minutes']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
