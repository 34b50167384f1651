"""Pictures for a run folder: labels, training mosaics, validation batches, PR/F1 curves, results."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from utils.boxes import xywh_to_xyxy


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, imported on first use (a run with --noplots, and
    every import of this module, skips its ~0.7 s import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color(index: int) -> tuple[int, int, int]:
    """A distinct BGR colour per class."""
    palette = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
               (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
               (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
               (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255)]
    return palette[int(index) % len(palette)]


@dataclass(frozen=True)
class BoxStyle:
    """How boxes are drawn: line width in pixels, and whether the tags show the name and the score."""

    thickness: int = 2
    hide_labels: bool = False
    hide_conf: bool = False


THIN = BoxStyle(thickness=1)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, names: list[str],
               scores: np.ndarray | None = None, style: BoxStyle = BoxStyle(),
               track_ids: np.ndarray | None = None) -> np.ndarray:
    """Draw xyxy pixel boxes with 'name score' tags on a BGR image, in place; with ``track_ids`` each box is
    coloured by its track and tagged 'id:7 name score'."""
    thickness, hide_labels, hide_conf = style.thickness, style.hide_labels, style.hide_conf
    for k, (box, cls) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), np.asarray(classes).reshape(-1))):
        c = color(int(cls) if track_ids is None else int(track_ids[k]))
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(image, p1, p2, c, thickness, cv2.LINE_AA)
        if hide_labels:
            continue
        name = names[int(cls)] if int(cls) < len(names) else str(int(cls))
        text = name if (scores is None or hide_conf) else f"{name} {float(scores[k]):.2f}"
        if track_ids is not None:
            text = f"id:{int(track_ids[k])} {text}"
        scale = max(thickness / 3, 0.35)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(thickness - 1, 1))
        top = p1[1] - th - 3 if p1[1] - th - 3 >= 0 else p1[1] + th + 3
        cv2.rectangle(image, (p1[0], top), (p1[0] + tw, p1[1]), c, -1, cv2.LINE_AA)
        cv2.putText(image, text, (p1[0], max(p1[1] - 2, th)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), max(thickness - 1, 1), cv2.LINE_AA)
    return image


def plot_batch(images: torch.Tensor, targets: torch.Tensor, path: Path, names: list[str],
               detections: list[torch.Tensor] | None = None, max_images: int = 16) -> None:
    """A mosaic of a batch (uint8 RGB) with label boxes, or predicted boxes when ``detections`` given."""
    images = images[:max_images].cpu().numpy()
    n, _, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.full((rows * h, cols * w, 3), 255, dtype=np.uint8)
    targets = targets.cpu().numpy()
    for i in range(n):
        tile = np.ascontiguousarray(images[i].transpose(1, 2, 0)[..., ::-1])
        if detections is not None:
            det = detections[i].cpu().numpy()
            det = det[det[:, 4] > 0.25]  # validation keeps everything above 0.001: draw the confident ones
            draw_boxes(tile, det[:, :4], det[:, 5], names, det[:, 4], style=THIN)
        else:
            t = targets[targets[:, 0] == i]
            draw_boxes(tile, xywh_to_xyxy(t[:, 2:6]) * (w, h, w, h), t[:, 1], names, style=THIN)
        r, c = divmod(i, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    scale = min(1.0, 1920 / max(canvas.shape[:2]))
    if scale < 1:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), canvas)


def plot_labels(labels: list[np.ndarray], names: list[str], path: Path) -> None:
    """Instances per class and the distributions of box centres and sizes."""
    plt = _pyplot()
    all_labels = np.concatenate([x for x in labels if len(x)] or [np.zeros((0, 5))], 0)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    counts = np.bincount(all_labels[:, 0].astype(int), minlength=len(names))
    ax[0].bar(range(len(names)), counts)
    ax[0].set_xlabel("class")
    ax[0].set_ylabel("instances")
    if len(names) <= 30:
        ax[0].set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax[1].hist2d(all_labels[:, 1], all_labels[:, 2], bins=50, cmap="Blues")
    ax[1].set_xlabel("x centre")
    ax[1].set_ylabel("y centre")
    ax[2].hist2d(all_labels[:, 3], all_labels[:, 4], bins=50, cmap="Blues")
    ax[2].set_xlabel("width")
    ax[2].set_ylabel("height")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pr_curves(curves: dict, names: list[str], save_dir: Path) -> None:
    """Mean precision-recall and F1-confidence curves."""
    plt = _pyplot()
    grid = curves["grid"]
    fig, ax = plt.subplots(1, 2, figsize=(12, 5))
    ax[0].plot(curves["recall"].mean(0), curves["precision"].mean(0), lw=2)
    ax[0].set_xlabel("recall")
    ax[0].set_ylabel("precision")
    ax[0].set_title("precision-recall (all classes)")
    ax[1].plot(grid, curves["f1"].mean(0), lw=2)
    ax[1].set_xlabel("confidence")
    ax[1].set_ylabel("F1")
    ax[1].set_title("F1-confidence (all classes)")
    for a in ax:
        a.set_xlim(0, 1)
        a.set_ylim(0, 1)
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(save_dir / "PR_F1_curves.png", dpi=120)
    plt.close(fig)


def plot_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path, background: bool = True) -> None:
    """Columns are true classes, rows predictions, each column normalised; detection adds a background class."""
    plt = _pyplot()
    normalised = matrix / (matrix.sum(0, keepdims=True) + 1e-9)
    fig, ax = plt.subplots(figsize=(10, 8))
    im = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    labels = names + (["background"] if background else [])
    if len(labels) <= 30:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_results(csv_path: Path) -> None:
    """One small plot per column of results.csv against the epoch."""
    plt = _pyplot()
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    def values(key: str) -> list[float]:
        return [float(r[key]) if r[key] not in ("", None) else float("nan") for r in rows]

    # object counts are constants, and a column with nothing measured (n/a throughout) is an empty panel
    keys = [k for k in rows[0] if k != "epoch" and not k.startswith("coco/n_")
            and not all(np.isnan(values(k)))]
    cols = 5
    rows_n = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.6 * rows_n))
    epochs = [int(r["epoch"]) for r in rows]
    for ax, key in zip(np.ravel(axes), keys):
        ax.plot(epochs, values(key), marker=".")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(key, fontsize=9)
    for ax in np.ravel(axes)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(csv_path.with_name("results.png"), dpi=100)
    plt.close(fig)


def validation_batch_plotter(save_dir: Path, names: list[str], batches: int = 3):
    """An ``evaluate(on_batch=...)`` callback drawing the first batches' labels and predictions."""
    def on_batch(i, images, targets, paths, detections) -> None:
        if i < batches:
            plot_batch(images, targets, save_dir / f"val_batch{i}_labels.jpg", names)
            plot_batch(images, targets, save_dir / f"val_batch{i}_pred.jpg", names, detections)
    return on_batch


def plot_validation(result: dict, confusion_matrix: np.ndarray, names: list[str], save_dir: Path) -> None:
    """The PR / F1 / P / R curves and the confusion matrix of one evaluation."""
    if result.get("curves") is not None:
        plot_pr_curves(result["curves"], names, save_dir)
        plot_confusion_matrix(confusion_matrix, names, save_dir / "confusion_matrix.png")


def plot_evolution(csv_path: Path, keys: list[str], path: Path) -> None:
    """--evolve: each hyp key against fitness (one point per generation, the fittest as a cross)."""
    plt = _pyplot()
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not keys:
        return
    fitness = np.array([float(r["fitness"]) for r in rows])
    best = int(np.argmax(fitness))
    cols = min(len(keys), 6)
    rows_n = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(2.6 * cols, 2.4 * rows_n), squeeze=False)
    for ax, key in zip(np.ravel(axes), keys):
        values = np.array([float(r[key]) for r in rows])
        ax.scatter(values, fitness, c=fitness, cmap="viridis", s=14, alpha=0.8)
        ax.plot(values[best], fitness[best], "k+", markersize=14)
        ax.set_title(f"{key} = {values[best]:.3g}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in np.ravel(axes)[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"fitness of {len(rows)} generations (best {fitness[best]:.4f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
