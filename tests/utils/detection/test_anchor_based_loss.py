import pytest
import torch

from models.yolo import DetectionModel
from utils.detection.anchor_based_loss import LossGains, YoloLoss


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DetectionModel("yolov5n.yaml", nc=4).train()


def _loss(model, targets, size=128, **gains):
    maps = model(torch.rand(2, 3, size, size))
    fn = YoloLoss(model.detect.anchors, nc=4, gains=LossGains(**gains), imgsz=size)
    return fn(maps, targets), maps


def test_no_targets_gives_only_objectness(model):
    (loss, items), _ = _loss(model, torch.zeros((0, 6)))
    assert torch.isfinite(loss) and loss > 0
    assert items[0] == 0 and items[2] == 0 and items[1] > 0


def test_one_target_all_terms_finite_and_positive(model):
    targets = torch.tensor([[0, 2, 0.5, 0.5, 0.2, 0.3]])
    (loss, items), maps = _loss(model, targets)
    assert torch.isfinite(items).all() and (items > 0).all()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()


def test_border_boxes_are_assigned_inside_the_grid(model):
    targets = torch.tensor([[0, 0, 0.001, 0.001, 0.05, 0.05], [1, 3, 0.999, 0.999, 0.1, 0.1],
                            [1, 1, 0.5, 0.999, 0.9, 0.05]])
    (loss, items), maps = _loss(model, targets)
    assert torch.isfinite(loss)
    fn = YoloLoss(model.detect.anchors, nc=4)
    for (_, _, gj, gi, tbox, _, _), p in zip(fn.build_targets(maps, targets), maps):
        h, w = p.shape[2:4]
        assert (gi >= 0).all() and (gi < w).all() and (gj >= 0).all() and (gj < h).all()
        assert (tbox[:, :2] >= -0.5).all() and (tbox[:, :2] <= 1.5).all()


def test_target_uses_neighbour_cells_and_anchor_ratio():
    anchors = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [40.0, 40.0]]])
    fn = YoloLoss(anchors, nc=2)
    p = torch.zeros(1, 3, 8, 8, 7)
    # centre at (3.25, 4.75) cells: left neighbour (x frac < 0.5) and lower neighbour (y frac > 0.5)
    targets = torch.tensor([[0, 1, 3.25 / 8, 4.75 / 8, 1.5 / 8, 1.5 / 8]])
    img, a, gj, gi, tbox, anchor, cls = fn.build_targets([p], targets)[0]
    assert set(a.tolist()) == {0, 1}  # the 40x40 anchor is beyond the ratio 4
    cells = set(zip(gi.tolist(), gj.tolist()))
    assert cells == {(3, 4), (2, 4), (3, 5)}


def test_label_smoothing_and_focal_loss_run(model):
    targets = torch.tensor([[0, 1, 0.4, 0.4, 0.3, 0.3]])
    (plain, _), _ = _loss(model, targets)
    (smooth, _), _ = _loss(model, targets, label_smoothing=0.1, fl_gamma=1.5)
    assert torch.isfinite(smooth) and smooth != plain


@pytest.mark.parametrize("fl_gamma", [0.0, 1.5])
def test_loss_state_lives_on_the_anchors_device(fl_gamma):
    # The trainer builds the loss from a model already moved to its GPU: nothing may stay on the CPU.
    anchors = DetectionModel("yolov5n.yaml", nc=4).detect.anchors.to("meta")
    fn = YoloLoss(anchors, nc=4, gains=LossGains(fl_gamma=fl_gamma))
    held = [fn.anchors, *fn._bce_cls.state_dict().values(), *fn._bce_obj.state_dict().values()]
    assert len(held) >= 3 and all(t.device.type == "meta" for t in held)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_loss_on_cuda_equals_cpu(model):
    targets = torch.tensor([[0, 2, 0.5, 0.5, 0.2, 0.3], [1, 0, 0.1, 0.9, 0.05, 0.04]])
    maps = [m.detach() for m in model(torch.rand(2, 3, 128, 128))]
    cpu_loss, _ = YoloLoss(model.detect.anchors, nc=4, imgsz=128)(maps, targets)
    cuda_loss, _ = YoloLoss(model.detect.anchors.cuda(), nc=4, imgsz=128)([m.cuda() for m in maps], targets.cuda())
    torch.testing.assert_close(cuda_loss.cpu(), cpu_loss, rtol=1e-5, atol=1e-6)


def test_loss_gradient_equals_plain_indexing_and_keeps_the_map_layout(model, monkeypatch):
    import utils.detection.anchor_based_loss as loss_module

    targets = torch.tensor([[0, 2, 0.5, 0.5, 0.2, 0.3], [1, 0, 0.1, 0.9, 0.05, 0.04], [1, 0, 0.1, 0.9, 0.05, 0.04]])
    # Maps laid out as the channels-last model hands them over: (B, H, W, na, no) memory, (B, na, H, W, no) view.
    raw = [torch.randn(2, s, s, 3, 9) for s in (16, 8, 4)]
    fn = YoloLoss(model.detect.anchors, nc=4, imgsz=128)
    grads, losses = [], []
    for gather in ("ours", "plain"):
        if gather == "plain":
            monkeypatch.setattr(loss_module._ObjectnessAndPositives, "apply",
                                lambda p, i, a, gj, gi: (p[..., 4], p[i, a, gj, gi]))
        leaves = [r.clone().requires_grad_(True) for r in raw]
        maps = [leaf.permute(0, 3, 1, 2, 4) for leaf in leaves]
        strides = []
        for p in maps:
            p.register_hook(lambda g, p=p, seen=strides: seen.append(g.stride() == p.stride()))
        loss, _ = fn(maps, targets)
        loss.backward()
        losses.append(loss.detach())
        grads.append([leaf.grad for leaf in leaves])
        if gather == "ours":  # written in the map's own layout: no transposing copy on the way back
            assert strides == [True, True, True]
        else:
            assert strides == [False, False, False]
    assert torch.equal(losses[0], losses[1])
    for ours, plain in zip(*grads):
        torch.testing.assert_close(ours, plain, rtol=0, atol=1e-9)


def test_nwd_mixes_into_the_box_loss_and_leaves_the_rest_alone(model):
    torch.manual_seed(3)
    maps = [m.detach() for m in model(torch.rand(2, 3, 128, 128))]
    targets = torch.tensor([[0, 2, 0.5, 0.5, 0.05, 0.06], [1, 1, 0.3, 0.7, 0.2, 0.1]])
    strides = model.stride.tolist()

    def items(nwd):
        return YoloLoss(model.detect.anchors, nc=4, gains=LossGains(nwd=nwd), imgsz=128, strides=strides)(
            maps, targets)[1]

    ciou, mixed, nwd = items(0.0), items(0.3), items(1.0)
    assert torch.allclose(mixed[0], 0.7 * ciou[0] + 0.3 * nwd[0])  # box term: (1 - r)(1 - CIoU) + r (1 - NWD)
    assert not torch.isclose(nwd[0], ciou[0]) and torch.equal(mixed[1:], ciou[1:])  # obj and cls unchanged
    assert torch.equal(ciou, YoloLoss(model.detect.anchors, nc=4, imgsz=128)(maps, targets)[1])
    with pytest.raises(ValueError, match="needs the model's strides"):
        YoloLoss(model.detect.anchors, nc=4, gains=LossGains(nwd=0.5))
