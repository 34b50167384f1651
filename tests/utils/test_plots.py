"""utils/plots.py: training mosaics tagged with file names and without blank white tiles; labels.jpg and the
correlogram written."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from utils.plots import EMPTY_TILE, plot_batch, plot_labels


def test_mosaic_tags_file_names_and_greys_empty_cells(tmp_path):
    images = torch.full((5, 3, 64, 64), 200, dtype=torch.uint8)
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.2, 0.2]])
    path = tmp_path / "batch.jpg"
    plot_batch(images, targets, path, ["a", "b"], paths=[f"/data/img{i}.jpg" for i in range(5)])
    mosaic = cv2.imread(str(path))
    assert mosaic.shape[:2] == (128, 192)  # 3 columns x 2 rows
    assert mosaic[4, 4].max() < 100  # the dark strip of the file name on the first tile
    empty = mosaic[70:120, 140:180]
    assert abs(int(empty.mean()) - EMPTY_TILE) <= 3  # the sixth cell: padding grey, not a white picture


def test_labels_picture_and_correlogram(tmp_path):
    rng = np.random.default_rng(0)
    labels = [np.column_stack([rng.integers(0, 3, 10), rng.random((10, 4)) * 0.5 + 0.1]) for _ in range(4)]
    plot_labels(labels, ["car", "person", "bike"], tmp_path / "labels.jpg")
    assert (tmp_path / "labels.jpg").stat().st_size > 20_000
    assert (tmp_path / "labels_correlogram.jpg").stat().st_size > 20_000
