"""Draws docs/space_to_depth.png: what SPD-Conv does to a feature map (run from the checkout root with
scripts/env.sh python docs/figures/space_to_depth.py)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrow, Rectangle  # noqa: E402

PHASES = ["#e4572e", "#29335c", "#f3a712", "#669bbc"]  # (even, even), (odd, even), (even, odd), (odd, odd)


def grid(ax, x0, y0, cells, size, colours, label=""):
    for (r, c), colour in zip(cells, colours):
        ax.add_patch(Rectangle((x0 + c * size, y0 - (r + 1) * size), size, size, facecolor=colour,
                               edgecolor="white", lw=1.5))
    if label:
        ax.text(x0 + size * (max(c for _, c in cells) + 1) / 2, y0 + 0.25, label, ha="center", fontsize=10)


def main() -> None:
    fig, ax = plt.subplots(figsize=(10, 3.4))
    cells = [(r, c) for r in range(4) for c in range(4)]
    grid(ax, 0, 4, cells, 1, [PHASES[(r % 2) * 2 + (c % 2)] for r, c in cells], "feature map S × S × C")
    ax.add_patch(FancyArrow(4.4, 2, 1.2, 0, width=0.06, color="black"))
    ax.text(5.0, 2.35, "space-to-depth", ha="center", fontsize=9)
    for k, colour in enumerate(PHASES):
        grid(ax, 6.2 + k * 0.45, 3.3 - k * 0.45, [(r, c) for r in range(2) for c in range(2)], 0.9, [colour] * 4)
    ax.text(7.6, 4.25, "S/2 × S/2 × 4C: every pixel kept", ha="center", fontsize=10)
    ax.add_patch(FancyArrow(9.6, 2, 1.2, 0, width=0.06, color="black"))
    ax.text(10.2, 2.35, "conv, stride 1", ha="center", fontsize=9)
    grid(ax, 11.4, 3.0, [(r, c) for r in range(2) for c in range(2)], 0.9, ["#7a7a7a"] * 4, "S/2 × S/2 × C'")
    ax.text(6.5, -0.6, "A strided convolution or pooling keeps one pixel of each 2×2 block (the red ones) and drops "
            "three; SPD-Conv keeps all four as channels.", ha="center", fontsize=9)
    ax.set_xlim(-0.3, 13.5)
    ax.set_ylim(-1.0, 4.8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(Path(__file__).resolve().parent.parent / "space_to_depth.png", dpi=110)


if __name__ == "__main__":
    main()
