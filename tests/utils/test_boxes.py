import numpy as np
import pytest
import torch

from utils.boxes import class_aware_nms, non_max_suppression, unletterbox_boxes, xywh_to_xyxy, xyxy_to_xywh


def test_box_conversions_round_trip_for_tensors_and_arrays():
    xywh = np.array([[10.0, 20.0, 4.0, 6.0]])
    assert np.allclose(xywh_to_xyxy(xywh), [[8, 17, 12, 23]])
    assert np.allclose(xyxy_to_xywh(xywh_to_xyxy(xywh)), xywh)
    t = torch.tensor([[10.0, 20.0, 4.0, 6.0]])
    assert torch.allclose(xyxy_to_xywh(xywh_to_xyxy(t)), t)


def _prediction(rows, nc=3):
    """rows: (cx, cy, w, h, obj, class scores...)"""
    return torch.tensor([rows], dtype=torch.float32).view(1, -1, 5 + nc)


def test_nms_multi_label_keeps_every_class_above_threshold():
    pred = _prediction([[50, 50, 20, 20, 0.9, 0.8, 0.6, 0.0]])
    single = non_max_suppression(pred, 0.25, 0.45, multi_label=False)[0]
    multi = non_max_suppression(pred, 0.25, 0.45, multi_label=True)[0]
    assert single.shape == (1, 6) and single[0, 5] == 0
    assert multi.shape == (2, 6) and sorted(multi[:, 5].tolist()) == [0, 1]
    assert torch.allclose(single[0, :4], torch.tensor([40.0, 40, 60, 60]))
    assert single[0, 4].item() == pytest.approx(0.72, rel=1e-5)


def test_nms_suppresses_overlaps_per_class_only():
    pred = _prediction([[50, 50, 20, 20, 0.9, 1.0, 0.0, 0.0],
                        [51, 51, 20, 20, 0.8, 1.0, 0.0, 0.0],
                        [51, 51, 20, 20, 0.8, 0.0, 1.0, 0.0]])
    det = non_max_suppression(pred, 0.25, 0.45)[0]
    assert sorted(det[:, 5].tolist()) == [0, 1]
    agnostic = non_max_suppression(pred, 0.25, 0.45, agnostic=True)[0]
    assert len(agnostic) == 1


def test_nms_empty_and_max_det_and_class_filter():
    empty = non_max_suppression(torch.zeros(2, 10, 8), 0.25, 0.45)
    assert [d.shape for d in empty] == [(0, 6), (0, 6)]
    rows = [[10 + 30 * i, 10, 5, 5, 0.9, 0.0, 0.0, 1.0] for i in range(10)]
    det = non_max_suppression(_prediction(rows), 0.25, 0.45, max_det=4)[0]
    assert len(det) == 4
    assert len(non_max_suppression(_prediction(rows), 0.25, 0.45, classes=[0])[0]) == 0


def test_unletterbox_maps_back_and_clips():
    boxes = torch.tensor([[16.0, 8.0, 56.0, 38.0], [0.0, 0.0, 400.0, 400.0]])
    out = unletterbox_boxes(boxes, 0.5, (16.0, 8.0), (100, 150))  # original image 150 wide, 100 high
    assert out[0].tolist() == [0.0, 0.0, 80.0, 60.0]
    assert out[1].tolist() == [0.0, 0.0, 150.0, 100.0]


def test_complete_iou_matches_torchvision_and_stays_finite():
    import torchvision

    from utils.boxes import complete_iou

    a = torch.tensor([[10.0, 10.0, 4.0, 6.0], [5.0, 5.0, 2.0, 2.0]])
    b = torch.tensor([[11.0, 9.0, 5.0, 5.0], [5.0, 5.0, 2.0, 2.0]])
    ours = complete_iou(a, b)
    theirs = 1 - torchvision.ops.complete_box_iou_loss(xywh_to_xyxy(a), xywh_to_xyxy(b), reduction="none")
    assert torch.allclose(ours, theirs, atol=1e-5)
    degenerate = torch.zeros(1, 4, requires_grad=True)
    value = complete_iou(degenerate, torch.tensor([[1.0, 1.0, 2.0, 2.0]]))
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(degenerate.grad).all()


def test_class_offset_nms_keeps_what_per_class_nms_keeps():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(3000, 2, generator=g) * 700 - 30  # some boxes start left of / above the image
    boxes = torch.cat((xy, xy + torch.rand(3000, 2, generator=g) * 120 + 1), 1)
    scores = torch.rand(3000, generator=g)
    classes = torch.randint(0, 80, (3000,), generator=g).float()
    per_class = class_aware_nms(boxes, scores, classes, 0.6)
    offset = class_aware_nms(boxes, scores, classes, 0.6, offset_classes=True)
    assert 300 < len(per_class) < 3000
    assert torch.equal(per_class, offset)


def test_yolo_label_rows_normalise_to_the_image():
    from utils.boxes import yolo_label_rows

    rows = yolo_label_rows([2, 0], [(10, 20, 30, 60), (0, 0, 100, 50)], (100, 200), scores=[0.5, 0.25])
    assert rows == ["2 0.1 0.4 0.1 0.4 0.5", "0 0.25 0.25 0.5 0.5 0.25"]
    assert yolo_label_rows([1], [(0, 0, 200, 100)], (100, 200)) == ["1 0.5 0.5 1 1"]


def test_normalized_wasserstein_by_hand():
    import math

    from utils.boxes import normalized_wasserstein

    a = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 3.0, 3.0]])
    b = torch.tensor([[3.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 2.0], [5.0, 5.0, 3.0, 3.0]])
    # W2 = |(dx, dy, dw/2, dh/2)|: 3 (a shift), 1 (two more pixels of width), 0 (the same box)
    expected = torch.tensor([math.exp(-3 / 12.8), math.exp(-1 / 12.8), 1.0])
    assert torch.allclose(normalized_wasserstein(a, b, 12.8), expected, atol=1e-4)
    far = normalized_wasserstein(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[10.0, 0, 2, 2]]), 12.8)
    assert 0 < far.item() < 1  # tiny boxes that do not overlap still get a graded similarity (IoU would be 0)


def test_merging_by_intersection_over_smaller_joins_the_halves_nms_would_keep():
    from utils.boxes import merge_by_ios

    boxes = torch.tensor([[0.0, 0, 10, 10], [5, 0, 12, 10], [5, 0, 12, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    classes = torch.tensor([0.0, 0, 1, 0])
    kept, merged = merge_by_ios(boxes, scores, classes, 0.5)
    # box 1 covers 50 of its 70 px inside box 0 (IoS 0.71): merged; box 2 is another class; box 3 is apart
    assert kept.tolist() == [0, 2, 3]
    assert merged.tolist() == [[0, 0, 12, 10], [5, 0, 12, 10], [50, 50, 60, 60]]
    kept, _ = merge_by_ios(boxes, scores, classes, 0.8)
    assert kept.tolist() == [0, 1, 2, 3]  # below the threshold nothing merges


def test_a_weak_box_around_many_objects_is_dropped_not_merged():
    """At an evaluation's conf 0.001, a faint box around a group must not swallow the group into one envelope."""
    from utils.boxes import merge_by_ios

    cars = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    faint_envelope = torch.tensor([[0.0, 0, 50, 10]])
    boxes = torch.cat((cars, faint_envelope))
    scores = torch.tensor([0.9, 0.85, 0.8, 0.01])
    kept, merged = merge_by_ios(boxes, scores, torch.zeros(4), 0.5)
    assert kept.tolist() == [0, 1, 2] and torch.equal(merged, cars)  # the envelope is a duplicate of car 0
    half = torch.tensor([[5.0, 0, 14, 10]])  # the other part of car 0 cut by a tile border, scored comparably
    kept, merged = merge_by_ios(torch.cat((cars, half)), torch.tensor([0.9, 0.85, 0.8, 0.7]), torch.zeros(4), 0.5)
    assert kept.tolist() == [0, 1, 2] and merged[0].tolist() == [0, 0, 14, 10]


def test_a_max_det_below_one_is_refused_everywhere():
    import pytest
    import torch

    from utils.boxes import NmsSettings, non_max_suppression

    predictions = torch.rand(1, 10, 7)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_det"):
            non_max_suppression(predictions, max_det=bad)
        with pytest.raises(ValueError, match="max_det"):
            NmsSettings(max_det=bad)
    assert len(non_max_suppression(predictions, conf_thres=0.0, max_det=1)[0]) == 1


def test_prediction_settings_leave_iou_and_box_count_to_the_family():
    from utils.boxes import NmsSettings

    default = NmsSettings.prediction()
    assert (default.conf_thres, default.iou_thres, default.max_det, default.multi_label) == (0.25, None, None, False)
    chosen = NmsSettings.prediction(0.4, iou_thres=0.5, max_det=10)
    assert (chosen.conf_thres, chosen.iou_thres, chosen.max_det) == (0.4, 0.5, 10)
