"""Pictures of one evaluation, as yolov5 and ultralytics users read them: the precision, recall, F1 and
precision-recall curves (one file each, per-class lines for up to 20 classes, the summary in the legend) and
the confusion matrix with class names, in counts and normalised by the true class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.plots import pyplot

PER_CLASS_LINES = 20  # more classes: the mean curve only (the lines would be unreadable)
MATRIX_CLASSES = 30  # more classes: the ones with the most boxes, named in the title


def _smooth(values: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """A box filter over ``fraction`` of the points (the summary curve's noise hides its maximum)."""
    width = max(round(len(values) * fraction * 2) // 2 + 1, 1)
    padded = np.concatenate([np.full(width // 2, values[0]), values, np.full(width // 2, values[-1])])
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def _curve_figure(title: str, xlabel: str, ylabel: str):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 6), tight_layout=True)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    return plt, fig, ax


def _save(plt, fig, ax, path: Path) -> None:
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_curves(curves: dict, names: list[str], save_dir: Path) -> list[Path]:
    """P_curve.png, R_curve.png and F1_curve.png against confidence, PR_curve.png; returns the paths."""
    grid, classes = curves["grid"], curves.get("classes", np.arange(len(curves["f1"])))
    ap50 = curves.get("ap50")
    per_class = len(classes) <= PER_CLASS_LINES
    f1_mean = _smooth(curves["f1"].mean(0))
    best = int(f1_mean.argmax())
    written = []
    for key, ylabel in (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1")):
        plt, fig, ax = _curve_figure(f"{ylabel}-confidence curve", "Confidence", ylabel)
        if per_class:
            for c, values in zip(classes, curves[key]):
                ax.plot(grid, values, lw=1, label=names[int(c)])
        mean = _smooth(curves[key].mean(0))
        at = best if key == "f1" else int(mean.argmax()) if key == "precision" else 0
        ax.plot(grid, mean, lw=3, color="blue", label=f"all classes {mean[at]:.2f} at {grid[at]:.3f}")
        if key == "f1":
            ax.axvline(grid[best], color="blue", ls="--", lw=1)
            ax.plot([grid[best]], [mean[best]], "o", color="blue")
        path = save_dir / f"{key[0].upper() if key != 'f1' else 'F1'}_curve.png"
        _save(plt, fig, ax, path)
        written.append(path)
    plt, fig, ax = _curve_figure("Precision-recall curve", "Recall", "Precision")
    for i, c in enumerate(classes if per_class else []):
        label = names[int(c)] + (f" {ap50[i]:.3f}" if ap50 is not None else "")
        ax.plot(curves["recall"][i], curves["precision"][i], lw=1, label=label)
    summary = f" {np.mean(ap50):.3f} mAP@0.5" if ap50 is not None else ""
    ax.plot(curves["recall"].mean(0), curves["precision"].mean(0), lw=3, color="blue",
            label=f"all classes{summary}")
    _save(plt, fig, ax, save_dir / "PR_curve.png")
    return [*written, save_dir / "PR_curve.png"]


def _shown_classes(matrix: np.ndarray, background: bool) -> np.ndarray:
    """Indices of the rows/columns drawn: all, or the classes with the most boxes (and background)."""
    n = len(matrix) - background
    if n <= MATRIX_CLASSES:
        return np.arange(len(matrix))
    busiest = np.argsort(-(matrix[:n].sum(0)[:n] + matrix[:n].sum(1)[:n]), kind="stable")[:MATRIX_CLASSES]
    chosen = np.sort(busiest)
    return np.append(chosen, n) if background else chosen


def plot_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path, background: bool = True) -> list[Path]:
    """``path`` (counts) and ``<path stem>_normalized`` (each true-class column sums to 1): columns are true
    classes, rows predictions; detection adds a background row (missed boxes) and column (false detections)."""
    plt = pyplot()
    labels = list(names) + (["background"] if background else [])
    shown = _shown_classes(matrix, background)
    column_totals = matrix.sum(0, keepdims=True)
    written = []
    for normalised in (False, True):
        values = matrix / np.maximum(column_totals, 1e-9) if normalised else matrix.astype(float)
        values = values[np.ix_(shown, shown)]
        n = len(shown)
        fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * n + 3), max(5.0, 0.36 * n + 2.5)), tight_layout=True)
        image = ax.imshow(np.where(values > 0, values, np.nan), cmap="Blues", vmin=0,
                          vmax=1 if normalised else max(values.max(), 1))
        ticks = [labels[i] for i in shown]
        ax.set_xticks(range(n), ticks, rotation=90, fontsize=8 if n <= MATRIX_CLASSES + 1 else 6)
        ax.set_yticks(range(n), ticks, fontsize=8 if n <= MATRIX_CLASSES + 1 else 6)
        ax.set_xlabel("True")
        ax.set_ylabel("Predicted")
        form = "normalised by true class" if normalised else "counts"
        extra = f", the {len(shown) - background} of {len(names)} classes with the most boxes" \
            if len(shown) < len(labels) else ""
        ax.set_title(f"Confusion matrix ({form}{extra})", fontsize=10)
        if n <= MATRIX_CLASSES + 1:
            for (r, c), v in np.ndenumerate(values):
                if v > 0:
                    text = (f"{v:.2f}" if v >= 0.005 else "<.01") if normalised else f"{int(v)}"
                    ax.text(c, r, text, ha="center", va="center", fontsize=6,
                            color="white" if v > (0.5 if normalised else values.max() / 2) else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        out = path.with_name(f"{path.stem}_normalized{path.suffix}") if normalised else path
        fig.savefig(out, dpi=150)
        plt.close(fig)
        written.append(out)
    return written


def plot_validation(result: dict, confusion_matrix: np.ndarray, names: list[str], save_dir: Path) -> None:
    """The P / R / F1 / PR curves and the confusion matrices of one evaluation."""
    if result.get("curves") is not None:
        plot_curves(result["curves"], names, save_dir)
        plot_confusion_matrix(confusion_matrix, names, save_dir / "confusion_matrix.png")
