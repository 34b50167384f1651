"""Pictures for a run folder: boxes drawn on images, labels, training and validation mosaics, results.png and
the evolution plot (the curves and confusion matrices of an evaluation: :mod:`utils.validation_plots`)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from utils.boxes import xywh_to_xyxy


def pyplot():
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


EMPTY_TILE = 114  # the letterbox grey: a cell of the mosaic without an image reads as padding, not as a picture


def _file_tag(tile: np.ndarray, text: str) -> None:
    """The image's file name on a dark strip at the top of its tile."""
    scale = 0.4 if tile.shape[1] >= 256 else 0.3
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(tile, (0, 0), (min(tw + 4, tile.shape[1]), th + 6), (40, 40, 40), -1)
    cv2.putText(tile, text, (2, th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def plot_batch(images: torch.Tensor, targets: torch.Tensor, path: Path, names: list[str],
               detections: list[torch.Tensor] | None = None, paths: list[str] | None = None) -> None:
    """A mosaic of up to 16 images of a batch (uint8 RGB) with label boxes, or predicted boxes when
    ``detections`` given, each tile tagged with its file name (``paths``); tiles are split by white lines."""
    images = images[:16].cpu().numpy()
    n, _, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.full((rows * h, cols * w, 3), EMPTY_TILE, dtype=np.uint8)
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
        if paths is not None and i < len(paths):
            _file_tag(tile, Path(str(paths[i])).name[:40])
        r, c = divmod(i, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    for r in range(1, rows):
        canvas[r * h - 1:r * h + 1] = 255
    for c in range(1, cols):
        canvas[:, c * w - 1:c * w + 1] = 255
    scale = min(1.0, 1920 / max(canvas.shape[:2]))
    if scale < 1:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), canvas)


LABEL_CLASSES = 30  # more classes: the histogram shows the most frequent ones


def plot_labels(labels: list[np.ndarray], names: list[str], path: Path) -> None:
    """``path`` (labels.jpg): instances per class by name, an overlay of box shapes, and the distributions of
    box centres and sizes; beside it ``labels_correlogram.jpg``: every pair of x, y, width, height."""
    plt = pyplot()
    boxes = np.concatenate([x for x in labels if len(x)] or [np.zeros((0, 5))], 0)
    fig, ax = plt.subplots(2, 2, figsize=(10, 9), tight_layout=True)
    counts = np.bincount(boxes[:, 0].astype(int), minlength=len(names))
    shown = np.sort(np.argsort(-counts, kind="stable")[:LABEL_CLASSES])
    ax[0, 0].bar(range(len(shown)), counts[shown], color=[np.array(color(c)[::-1]) / 255 for c in shown])
    ax[0, 0].set_xticks(range(len(shown)), [names[c] for c in shown], rotation=90, fontsize=8)
    ax[0, 0].set_ylabel("instances")
    more = f" (the {len(shown)} most frequent of {len(names)})" if len(shown) < len(names) else ""
    ax[0, 0].set_title(f"{len(boxes)} boxes in {len(labels)} images{more}", fontsize=10)
    ax[0, 1].imshow(_box_overlay(boxes))
    ax[0, 1].set_title("box shapes (up to 1000, centred)", fontsize=10)
    ax[0, 1].axis("off")
    for a, (i, j, xlabel, ylabel) in zip((ax[1, 0], ax[1, 1]), ((1, 2, "x", "y"), (3, 4, "width", "height"))):
        a.hist2d(boxes[:, i], boxes[:, j], bins=50, range=[[0, 1], [0, 1]], cmap="Blues", cmin=1)
        a.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1))
    ax[1, 0].invert_yaxis()  # image rows grow downwards
    fig.savefig(path, dpi=120)
    plt.close(fig)
    _correlogram(boxes[:, 1:5], path.with_name("labels_correlogram.jpg"))


def _box_overlay(boxes: np.ndarray, size: int = 1000) -> np.ndarray:
    canvas = np.full((size, size, 3), 255, np.uint8)
    for cls, _, _, w, h in boxes[:1000]:
        half = np.array([w, h]) * size / 2
        cv2.rectangle(canvas, tuple((size / 2 - half).astype(int)), tuple((size / 2 + half).astype(int)),
                      color(int(cls))[::-1], 1)
    return canvas


def _correlogram(values: np.ndarray, path: Path) -> None:
    plt = pyplot()
    keys = ["x", "y", "width", "height"]
    fig, axes = plt.subplots(4, 4, figsize=(9, 9), tight_layout=True)
    for (r, c), a in np.ndenumerate(axes):
        if r == c:
            a.hist(values[:, c], bins=50, range=(0, 1), color="steelblue")
        else:
            a.hist2d(values[:, c], values[:, r], bins=50, range=[[0, 1], [0, 1]], cmap="Blues", cmin=1)
        a.set_xlim(0, 1)
        if r == 3:
            a.set_xlabel(keys[c])
        if c == 0:
            a.set_ylabel(keys[r])
        a.tick_params(labelsize=7)
    fig.suptitle("label correlogram (fractions of the image)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_results(csv_path: Path) -> None:
    """One small plot per column of results.csv against the epoch."""
    plt = pyplot()
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
            plot_batch(images, targets, save_dir / f"val_batch{i}_labels.jpg", names, paths=paths)
            plot_batch(images, targets, save_dir / f"val_batch{i}_pred.jpg", names, detections, paths)
    return on_batch


def plot_evolution(csv_path: Path, keys: list[str], path: Path) -> None:
    """--evolve: each hyp key against fitness (one point per generation, the fittest as a cross)."""
    plt = pyplot()
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
