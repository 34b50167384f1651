import torch

from utils.detection.assigner import TaskAlignedAssigner


def _grid(stride: float, size: int) -> torch.Tensor:
    c = (torch.arange(size, dtype=torch.float32) + 0.5) * stride
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack((gx, gy), -1).view(-1, 2)


def test_picks_the_anchors_inside_the_box_at_most_topk():
    centres = _grid(8, 16)  # a 128 x 128 image at stride 8
    n = len(centres)
    scores = torch.full((1, n, 2), 0.5)
    pred = torch.tensor([[20.0, 20.0, 100.0, 90.0]]).expand(1, n, 4)  # every anchor predicts about the box
    gt = torch.tensor([[[24.0, 24.0, 96.0, 88.0]]])
    out = TaskAlignedAssigner(2, topk=10)(scores, pred, centres, torch.tensor([[[1.0]]]), gt, torch.ones(1, 1, 1))
    chosen = centres[out.foreground[0]]
    assert len(chosen) == 10
    assert torch.all((chosen > gt[0, 0, :2]) & (chosen < gt[0, 0, 2:]))
    assert torch.all(out.scores[0, out.foreground[0], 1] > 0) and torch.all(out.scores[0, :, 0] == 0)
    assert torch.all(out.boxes[0, out.foreground[0]] == gt[0, 0])


def test_a_tiny_box_still_gets_an_anchor_and_padding_rows_get_none():
    centres = _grid(8, 8)
    n = len(centres)
    scores = torch.full((1, n, 1), 0.5)
    pred = torch.tensor([[10.0, 10.0, 14.0, 14.0]]).expand(1, n, 4)
    gt = torch.tensor([[[10.0, 10.0, 13.0, 13.0], [0.0, 0.0, 0.0, 0.0]]])  # 3 px: no centre inside; one padding row
    mask = torch.tensor([[[1.0], [0.0]]])
    out = TaskAlignedAssigner(1, topk=10, strides=(8, 16, 32))(scores, pred, centres, torch.zeros(1, 2, 1), gt, mask)
    assert out.foreground.any()  # widened to 16 px for the inside test
    assert torch.all(out.gt_index[out.foreground] == 0)


def test_an_anchor_claimed_by_two_boxes_goes_to_the_one_it_overlaps_most():
    centres = torch.tensor([[20.0, 20.0]])
    scores = torch.full((1, 1, 1), 0.9)
    pred = torch.tensor([[[10.0, 10.0, 30.0, 30.0]]])
    gt = torch.tensor([[[0.0, 0.0, 40.0, 40.0], [9.0, 9.0, 31.0, 31.0]]])
    out = TaskAlignedAssigner(1, topk=1)(scores, pred, centres, torch.zeros(1, 2, 1), gt, torch.ones(1, 2, 1))
    assert out.foreground.tolist() == [[True]] and out.gt_index.tolist() == [[1]]
