import pytest
import torch

from models.anchor_free_head import DFL, AnchorFreeDetect, anchor_points, distances_to_boxes
from models.parser import ConfigError, load_config
from models.summary import count_gflops, count_parameters
from models.yolo import DetectionModel

# ultralytics 8.4's counts for its detection YAMLs at nc 80
PARAMS = {
    "yolov8n": 3_157_200, "yolov8s": 11_166_560, "yolov8m": 25_902_640, "yolov8l": 43_691_520,
    "yolov8x": 68_229_648, "yolo11n": 2_624_080, "yolo11s": 9_458_752, "yolo11m": 20_114_688,
    "yolo11l": 25_372_160, "yolo11x": 56_966_176,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_size_has_ultralytics_parameter_count(name):
    model = DetectionModel(f"{name}.yaml")
    assert count_parameters(model) == PARAMS[name]
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    assert not model.anchor_based and model.detect.reg_max == 16


def test_gflops_are_counted_like_the_yolov5_rows():
    # two per multiply-add with BatchNorm, at 640: a little above ultralytics' fused 8.7 / 6.5
    assert count_gflops(DetectionModel("yolov8n.yaml"), 640) == pytest.approx(8.80, abs=0.02)
    assert count_gflops(DetectionModel("yolo11n.yaml"), 640) == pytest.approx(6.55, abs=0.02)


def test_a_size_is_named_by_the_file_name_or_the_scale_key():
    assert load_config("yolo11s")["width_multiple"] == 0.5
    assert load_config("yolo11s.yaml")["scale"] == "s"
    config = load_config("yolov8")  # no size given: the first, with a warning
    assert config["scale"] == "n"
    with pytest.raises(ConfigError, match="size 'q'"):
        load_config({**load_config("yolo11"), "scale": "q"})
    with pytest.raises(ConfigError, match="not found"):
        load_config("yolo12n")


def test_ultralytics_detect_row_is_the_anchor_free_head_with_their_class_branch_rule():
    v8 = load_config("yolov8n")
    v8["head"][-1] = [[15, 18, 21], 1, "Detect", ["nc"]]
    v11 = load_config("yolo11n")
    v11["head"][-1] = [[16, 19, 22], 1, "Detect", ["nc"]]
    assert not DetectionModel(v8).detect.depthwise_cls
    assert DetectionModel(v11).detect.depthwise_cls
    v11["end2end"] = True
    with pytest.raises(ConfigError, match="NMS-free"):
        load_config(v11)


def test_c3k2_of_sizes_m_l_x_use_c3k_inner_blocks():
    from models.c2f_blocks import C3k

    medium, small = DetectionModel("yolo11m.yaml"), DetectionModel("yolo11s.yaml")
    assert isinstance(medium.model[2].m[0], C3k) and not isinstance(small.model[2].m[0], C3k)


def test_training_maps_and_decoded_layout():
    model = DetectionModel("yolo11n.yaml", nc=3)
    maps = model(torch.randn(2, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(2, 67, 8, 12), (2, 67, 4, 6), (2, 67, 2, 3)]
    sum(m.square().mean() for m in maps).backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 64 + 16 + 4, 5 + 3)
    assert torch.all(out[..., 4] == 1) and torch.all((out[..., 5:] >= 0) & (out[..., 5:] <= 1))


def test_decode_puts_each_distance_at_its_cell_centre():
    head = AnchorFreeDetect(nc=2, reg_max=16, ch=[8])
    head.stride = torch.tensor([8.0])
    head.eval()
    logits = torch.full((1, 4 * 16 + 2, 2, 2), -30.0)
    for side, bins in enumerate((1, 2, 3, 4)):  # left 1, top 2, right 3, bottom 4 grid units
        logits[:, side * 16 + bins] = 30.0
    out = head.decode([logits])
    x1, y1, x2, y2 = 0.5 - 1, 0.5 - 2, 0.5 + 3, 0.5 + 4  # the first cell's centre is (0.5, 0.5)
    expected = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) * 8
    assert torch.allclose(out[0, 0, :4], expected, atol=1e-4)
    assert torch.allclose(out[0, 3, :2], expected[:2] + 8, atol=1e-4)  # the cell at (1, 1)


def test_dfl_is_the_expected_bin_and_boxes_come_back():
    x = torch.zeros(1, 64, 1)
    x[0, 5, 0] = 50.0  # side 0 at bin 5; the others uniform: expected 7.5
    assert torch.allclose(DFL(16)(x)[0, :, 0], torch.tensor([5.0, 7.5, 7.5, 7.5]), atol=1e-4)
    points, strides = anchor_points([torch.zeros(1, 1, 2, 3)], torch.tensor([4.0]))
    assert points.tolist()[:2] == [[0.5, 0.5], [1.5, 0.5]] and strides.flatten().tolist() == [4.0] * 6
    boxes = distances_to_boxes(torch.tensor([[1.0, 1.0, 2.0, 2.0]]), torch.tensor([[5.0, 5.0]]), xywh=False)
    assert boxes.tolist() == [[4.0, 4.0, 7.0, 7.0]]


def test_fused_inference_form_equals_the_plain_model():
    torch.manual_seed(0)
    model = DetectionModel("yolo11n.yaml", nc=4).eval()
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        plain = model(x)
        fused = model.for_inference()(x)
    assert torch.allclose(plain, fused, atol=2e-3)
