"""Training parity with ultralytics: the same from-scratch runs here (train.py, the family's default recipe
hyp.anchor_free.yaml) and in ultralytics' own trainer (its defaults), same model, data, epochs, size, batch and
seeds; both runs' best.pt scored by one evaluator (val.py, which gives `yolo val`'s figures on the same weights).

    scripts/env.sh python benchmarks/training_parity.py --out /somewhere/parity        # yolo11n, seeds 0 1
    scripts/env.sh python benchmarks/training_parity.py --models yolo11n yolov8n --seeds 0 1 --out ...

Resumable: a run whose results.csv holds every epoch is kept, not trained again (an unfinished one starts over).
Prints per model and side each seed's mAP50-95 / mAP50 / COCO AP_S, the mean and the spread (half the range).
Peer: benchmarks/ultralytics_env.sh (or ULTRALYTICS_PYTHON). Hours of CPU: never time anything beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _finished(results_csv: Path, epochs: int) -> bool:
    if not results_csv.is_file():
        return False
    with open(results_csv) as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return sum(1 for row in rows if int(float(row["epoch"])) >= 0) >= epochs


def _ultralytics_data(out: Path) -> Path:
    """The embedded default set (generated here on first use) as an ultralytics dataset YAML."""
    sys.path.insert(0, str(ROOT))
    from utils.data.formats import load_dataset_config

    config = load_dataset_config("smallobj.yaml")
    data = out / "smallobj_ultralytics.yaml"
    data.write_text(yaml.safe_dump({"path": config["path"], "train": "images/train", "val": "images/val",
                                    "names": dict(enumerate(config["names"]))}))
    return data


def train_ours(model: str, seed: int, args: argparse.Namespace) -> Path:
    folder = args.out / "ours" / f"{model}_seed{seed}"
    if not _finished(folder / "results.csv", args.epochs):
        env = {**os.environ, "YOLOV5_SPD_CACHE": str(args.out / "cache")}
        subprocess.run([sys.executable, str(ROOT / "train.py"), "--cfg", f"{model}.yaml", "--epochs", str(args.epochs),
                        "--imgsz", str(args.imgsz), "--batch-size", "16", "--seed", str(seed), "--workers", "2",
                        "--device", "cpu", "--noplots", "--exist-ok", "--project", str(folder.parent),
                        "--name", folder.name], check=True, env=env)
    return folder / "weights" / "best.pt"


def train_ultralytics(model: str, seed: int, args: argparse.Namespace, data: Path) -> Path:
    folder = args.out / "ultralytics" / f"{model}_seed{seed}"
    if not _finished(folder / "results.csv", args.epochs):
        python = os.environ.get("ULTRALYTICS_PYTHON") or subprocess.run(
            [str(ROOT / "benchmarks" / "ultralytics_env.sh")], capture_output=True, text=True,
            check=True).stdout.strip()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([str(Path(python).parent / "yolo"), "detect", "train", f"model={model}.yaml", f"data={data}",
                        f"epochs={args.epochs}", f"imgsz={args.imgsz}", "batch=16", "workers=2", "device=cpu",
                        f"seed={seed}", "deterministic=True", "plots=False", "pretrained=False",
                        f"project={folder.parent}", f"name={folder.name}", "exist_ok=True"], check=True,
                       env={**env, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(args.out / "ultralytics_config")})
    return folder / "weights" / "best.pt"


def score(best: Path, args: argparse.Namespace) -> dict:
    """val.py's figures (ultralytics' conventions for this family) of one best.pt on the embedded val split."""
    kept = best.parent.parent / "score.json"
    if kept.is_file() and kept.stat().st_mtime >= best.stat().st_mtime:
        return json.loads(kept.read_text())
    sys.path.insert(0, str(ROOT))
    import val

    metrics = val.run(weights=str(best), data="smallobj.yaml", imgsz=args.imgsz, batch_size=16, workers=2,
                      device="cpu", plots=False, project=str(best.parent.parent / "val"), exist_ok=True)
    figures = {"mAP50_95": metrics["mAP50_95"], "mAP50": metrics["mAP50"], "AP_S": metrics["coco"]["AP_S"]}
    kept.write_text(json.dumps(figures))
    return figures


def _line(side: str, runs: dict[int, dict]) -> str:
    def stat(key: str) -> str:
        values = [r[key] for r in runs.values()]
        mean, half = sum(values) / len(values), (max(values) - min(values)) / 2
        return f"{key} {' / '.join(f'{v:.4f}' for v in values)} (mean {mean:.4f} ± {half:.4f})"
    return f"  {side:<12} " + "  ".join(stat(k) for k in ("mAP50_95", "mAP50", "AP_S"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["yolo11n"], choices=["yolo11n", "yolov8n"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=256)
    p.add_argument("--out", type=Path, required=True, help="a folder outside the checkout (runs are kept there)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = _ultralytics_data(args.out)
    report = [f"embedded set, from scratch, {args.epochs} epochs at {args.imgsz}, batch 16, CPU; "
              f"seeds {' '.join(map(str, args.seeds))}; best.pt of each run scored by val.py"]
    for model in args.models:
        ours = {s: score(train_ours(model, s, args), args) for s in args.seeds}
        theirs = {s: score(train_ultralytics(model, s, args, data), args) for s in args.seeds}
        report += [model, _line("here", ours), _line("ultralytics", theirs)]
    print("\n".join(report))


if __name__ == "__main__":
    main()
