"""utils/data/tiles.py: native-resolution windows of large images, boxes cut by the survival rule."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from utils.data.augmentations import BoxRule
from utils.data.dataset import YoloDataset
from utils.data.scan import ScanResult
from utils.data.tiles import tile_origins, tile_scan


def _scan(tmp_path, boxes_px, h=200, w=300):
    """One h x w image whose pixels inside each box are 255, labelled with those boxes."""
    image = np.zeros((h, w, 3), np.uint8)
    rows = []
    for x1, y1, x2, y2 in boxes_px:
        image[y1:y2, x1:x2] = 255
        rows.append([0, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), image)
    return ScanResult(images=[str(path)], shapes=[(h, w)], labels=[np.array(rows, np.float32).reshape(-1, 5)],
                      ignore=[np.zeros((0, 4), np.float32)])


def test_windows_cover_the_image_and_end_at_its_edges():
    assert tile_origins(300, 100, 0.2) == [0, 80, 160, 200]
    assert tile_origins(80, 100, 0.2) == [0]


def test_boxes_follow_their_pixels_into_each_window_and_slivers_are_dropped(tmp_path):
    # a box fully inside the first window, one cut by a border (kept where enough remains), one sliver
    scan = _scan(tmp_path, [(10, 10, 30, 40), (90, 50, 130, 70), (99, 150, 103, 160)])
    tiled, summary = tile_scan(scan, 100, overlap=0.0, empty_rate=1.0, rule=BoxRule(), imgsz=100)
    assert summary.tiles == len(tiled.images) == 6 and tiled.windows[0] == (0, 0, 100, 100)
    assert tiled.images[1].endswith("big.png#100,0") and tiled.sources[1] == scan.images[0]
    dataset = YoloDataset(tiled, imgsz=100, augment=False, rect=False)
    for k in range(len(tiled.images)):
        image, labels, path, _ = dataset[k]
        pixels = image.permute(1, 2, 0).numpy()
        for _, _, cx, cy, bw, bh in labels.tolist():  # every kept box covers white pixels of its window
            x1, y1, x2, y2 = (int(round(v)) for v in ((cx - bw / 2) * 100, (cy - bh / 2) * 100,
                                                       (cx + bw / 2) * 100, (cy + bh / 2) * 100))
            assert (pixels[y1:y2, x1:x2] > 200).mean() > 0.95, (path, x1, y1, x2, y2)
    # the border box: 10 of its 40 px in window 0 (a quarter of its area: kept), 30 in window 1; the 4-px box:
    # 1 px in window 3 (not wider than min_box_side 2: dropped) and 3 px in window 4 (kept)
    assert summary.dropped_at_borders == 1 and summary.boxes_after == 4


def test_empty_windows_are_kept_at_the_stated_rate_deterministically(tmp_path):
    scan = _scan(tmp_path, [(10, 10, 30, 40)], h=1000, w=1000)
    tiled, summary = tile_scan(scan, 100, overlap=0.0, empty_rate=0.1, seed=3)
    again, _ = tile_scan(scan, 100, overlap=0.0, empty_rate=0.1, seed=3)
    assert summary.with_boxes == 1 and summary.empty_total == 99 and again.images == tiled.images
    assert 3 <= summary.empty_kept <= 20 and len(tiled.images) == 1 + summary.empty_kept
    assert "1 images -> " in summary.line("train", 100, 0.0, 0.1)


def test_training_on_tiles_end_to_end(tiny_data, tmp_path, monkeypatch):
    import train

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    result = train.train(train.parse_args(["--data", str(tiny_data), "--imgsz", "64", "--tile", "64", "--epochs",
                                           "1", "--batch-size", "4", "--workers", "0", "--noplots", "--val-tiles",
                                           "--project", str(tmp_path), "--cfg", "yolov5n.yaml"]))
    assert "AP_S" in result["coco"]
    with pytest.raises(ValueError, match="--val-tiles needs --tile"):
        train.parse_args(["--val-tiles"])


def test_window_counts_no_user_means_are_refused_up_front():
    import math

    import pytest

    from utils.data.tiles import MAX_OVERLAP, tile_origins

    assert len(tile_origins(1000, 100, MAX_OVERLAP)) <= 11 * len(tile_origins(1000, 100, 0.0))  # ~10x per side
    for tile, overlap in ((100, 0.99), (100, 1.0), (100, -0.2), (100, math.nan), (0, 0.2), (-5, 0.2), (True, 0.2)):
        with pytest.raises(ValueError, match="tile (size|overlap)"):
            tile_origins(1000, tile, overlap)


def test_slicing_refuses_sizes_and_overlaps_no_user_means():
    import pytest

    from utils.data.tiles import Slicing
    from utils.options import ConfigurationError

    for tile_hw, overlap in (((0, 0), 0.2), ((-64, 64), 0.2), ((float("nan"), 64), 0.2), ((64.5, 64), 0.2),
                             ((64, 64), -0.1), ((64, 64), float("nan")), ((64, 64), 1.0), ((True, 64), 0.2)):
        with pytest.raises(ConfigurationError, match="--slice needs tiles"):
            Slicing(tile_hw, overlap)
    assert Slicing((64, 96), 0.5).tile_hw == (64, 96)
