"""One figure of per-epoch curves, a panel per input size (the SPD-vs-strided benchmarks)."""

from __future__ import annotations

from pathlib import Path


def plot_per_size(results: list[dict], sizes: list[int], curve: str, ylabel: str, path: Path,
                  first_epoch: int = 1) -> None:
    """``results``: dicts with cfg, seed, imgsz and a list under ``curve``; one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for r in results:
            if r["imgsz"] == size:
                ax.plot(range(first_epoch, first_epoch + len(r[curve])), r[curve], label=f"{r['cfg']} seed {r['seed']}")
        ax.set_title(f"{ylabel} per epoch, input {size}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
