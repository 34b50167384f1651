"""utils/detection/anchors.py: AutoAnchor reports boxes under 2 px and never stops a run for want of boxes to fit."""

from __future__ import annotations

import numpy as np
import torch

from utils.detection.anchors import check_anchors

P3_P5 = torch.tensor([[[1.25, 1.625], [2.0, 3.75], [4.125, 2.875]], [[1.875, 3.8125], [3.875, 2.8125],
                      [3.6875, 7.4375]], [[3.625, 2.8125], [4.875, 6.1875], [11.65625, 10.1875]]])
STRIDES = torch.tensor([8.0, 16.0, 32.0])


def test_boxes_under_two_pixels_are_counted_and_too_few_to_fit_keeps_the_anchors():
    shapes = np.array([[512, 640]] * 3)
    tiny = np.array([[0, 0.5, 0.5, 0.01, 0.02]], np.float32)  # 0.96 x 1.5 px at --imgsz 96
    labels = [tiny, tiny, np.array([[0, 0.5, 0.5, 0.05, 0.05]], np.float32)]
    new, line = check_anchors(P3_P5, STRIDES, shapes, labels, imgsz=96)
    assert new is None
    assert "(2 of 3 boxes are under 2 px at --imgsz 96" in line
    assert "only 1 boxes of 2 px or more, too few to fit 9 anchors: kept the originals" in line
