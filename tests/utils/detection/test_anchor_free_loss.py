import pytest
import torch

from utils.detection.anchor_free_loss import AnchorFreeGains, AnchorFreeLoss, distribution_focal_loss, padded_targets


def _seeded_case() -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    maps = [torch.randn(2, 64 + 3, h, w, generator=g) * 2 for h, w in ((16, 20), (8, 10), (4, 5))]
    targets = torch.tensor([[0, 0, 0.30, 0.40, 0.20, 0.30], [0, 2, 0.32, 0.42, 0.05, 0.04],
                            [0, 1, 0.70, 0.60, 0.40, 0.25], [1, 2, 0.50, 0.50, 0.02, 0.03],
                            [1, 0, 0.15, 0.80, 0.25, 0.35]])
    return maps, targets


def test_equals_ultralytics_on_a_seeded_case():
    # ultralytics 8.4.190's v8DetectionLoss on these very tensors (its own environment): total 1512.804,
    # box 5.81762, cls 744.2867, dfl 6.29763 (the tiny boxes exercise its widening of sides under stride 16)
    maps, targets = _seeded_case()
    total, items = AnchorFreeLoss(3, [8, 16, 32])(maps, targets)
    assert total.item() == pytest.approx(1512.804, rel=1e-5)
    assert items.tolist() == pytest.approx([5.81762, 744.2867, 6.29763], rel=1e-5)


def test_target_rows_in_any_order_give_the_same_loss():
    maps, targets = _seeded_case()
    loss = AnchorFreeLoss(3, [8, 16, 32])
    shuffled = targets[torch.tensor([3, 0, 4, 2, 1])]
    assert torch.allclose(loss(maps, targets)[1], loss(maps, shuffled)[1])


def test_a_perfect_prediction_has_no_box_or_dfl_loss():
    # one level of stride 8 on a 64 x 64 image; a box whose edges lie half a cell off the grid, so every anchor
    # centre inside it is a whole number of cells from each edge and its bins can be exactly right
    box = torch.tensor([4.0, 4.0, 60.0, 44.0])
    maps = torch.full((1, 64 + 1, 8, 8), -20.0)
    for gy in range(8):
        for gx in range(8):
            cx, cy = (gx + 0.5) * 8, (gy + 0.5) * 8
            sides = [(cx - box[0]) / 8, (cy - box[1]) / 8, (box[2] - cx) / 8, (box[3] - cy) / 8]
            for side, d in enumerate(sides):
                if 0 <= d <= 15:
                    maps[0, side * 16 + int(d), gy, gx] = 20.0
    targets = torch.tensor([[0, 0, 0.5, 0.375, 56 / 64, 40 / 64]])
    _, (box_loss, cls_loss, dfl_loss) = AnchorFreeLoss(1, [8], gains=AnchorFreeGains(box=1, cls=1, dfl=1))([maps],
                                                                                                            targets)
    assert box_loss < 1e-5 and dfl_loss < 1e-5
    assert cls_loss > 0  # every logit is -20: the class branch still has to learn


def test_no_targets_leave_only_the_background_class_loss():
    maps, _ = _seeded_case()
    total, items = AnchorFreeLoss(3, [8, 16, 32])(maps, torch.zeros((0, 6)))
    assert items[0] == 0 and items[2] == 0 and items[1] > 0 and torch.isfinite(total)


def test_padded_targets_and_the_two_bin_dfl():
    classes, boxes, mask = padded_targets(torch.tensor([[1, 4, 0.5, 0.5, 0.5, 0.5], [1, 2, 0.25, 0.25, 0.1, 0.1]]), 2,
                                          100, 200)
    assert classes.shape == (2, 2, 1) and mask[:, :, 0].tolist() == [[False, False], [True, True]]
    assert boxes[1, 0].tolist() == [50.0, 25.0, 150.0, 75.0] and classes[1, :, 0].tolist() == [4.0, 2.0]
    logits = torch.full((1, 4, 16), -50.0)
    logits[..., 3] = 50.0
    assert distribution_focal_loss(logits, torch.full((1, 4), 3.0), 16).item() < 1e-6
    assert distribution_focal_loss(logits, torch.full((1, 4), 3.5), 16).item() > 10  # half its mass in bin 4
