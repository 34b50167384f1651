"""Draws a picture of COCO AP_S per epoch from run folders' results.csv, one line per run:

    scripts/env.sh python docs/figures/ap_s_per_epoch.py OUT.png LABEL=RUN_FOLDER [LABEL=RUN_FOLDER ...]

(docs/hit_uav_ap_s_per_epoch.png: the HIT-UAV arms scratch_yolo11n and scratch_yolo11n_spd, seed 0.)"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curve(folder: Path) -> tuple[list[int], list[float]]:
    """(epochs, AP_S) of a run's results.csv (the row before training, -1, left out)."""
    with open(folder / "results.csv", newline="") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    kept = [r for r in rows if int(float(r["epoch"])) >= 0 and r.get("coco/AP_S") not in ("", "nan", None)]
    return [int(float(r["epoch"])) + 1 for r in kept], [float(r["coco/AP_S"]) for r in kept]


def main(out: str, runs: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for spec in runs:
        label, _, folder = spec.partition("=")
        epochs, values = curve(Path(folder))
        ax.plot(epochs, values, marker="o", label=label)
    ax.set(xlabel="epoch", ylabel="COCO AP_S (objects under 32² px)", title="AP_S per epoch (validation split)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
