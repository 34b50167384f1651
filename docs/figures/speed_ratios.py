"""Draws docs/speed_ratios.png from the table of docs/benchmarks/speed.md (its "ratio" column, ours against the
reference, each run a dot): run from the checkout root with scripts/env.sh python docs/figures/speed_ratios.py."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent
FASTER_WHEN_LOWER = ("latency", "peak memory", "NMS", "val.py")  # ours / reference: below 1 is better


def rows() -> list[tuple[str, list[float], bool]]:
    """(figure, the runs' ratios, lower is better) of every row that has a ratio."""
    found = []
    for line in (DOCS / "benchmarks" / "speed.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not re.match(r"^[\d.]+( / [\d.]+)*$", cells[3]):
            continue
        name = re.sub(r" \(.*\)", "", cells[0])
        found.append((name, [float(v) for v in cells[3].split(" / ")], name.startswith(FASTER_WHEN_LOWER)))
    return found


def main() -> None:
    table = rows()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(table) + 1.2))
    for k, (_name, ratios, lower_better) in enumerate(table):
        gain = [1 / r for r in ratios] if lower_better else ratios  # > 1: this project ahead
        ax.plot(gain, [k] * len(gain), "o", color="tab:blue" if min(gain) >= 1 else "tab:orange")
    ax.axvline(1, color="black", lw=1)
    ax.set_yticks(range(len(table)), [name for name, _, _ in table], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("advantage over the reference yolov5 (× faster, or × less memory); each dot one run")
    ax.set_title("CPU speed against PyPI yolov5 7.0.14 (2 threads, same machine, same run)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(DOCS / "speed_ratios.png", dpi=110)


if __name__ == "__main__":
    main()
