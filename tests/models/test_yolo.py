
import pytest
import torch

from models.parser import ConfigError, load_config, resolve_config_path
from models.summary import count_gflops, count_parameters
from models.yolo import DetectionModel

PARAMS = {
    "space_depth_n": 2_256_157, "space_depth_s": 8_771_389, "space_depth_m": 24_646_557,
    "space_depth_l": 52_707_709, "yolov5n": 1_872_157, "yolov5s": 7_235_389, "yolov5m": 21_190_557,
    "yolov5l": 46_563_709,
}
GFLOPS = {
    "space_depth_n": 8.9, "space_depth_s": 34.0, "space_depth_m": 88.3, "space_depth_l": 179.0,
    "yolov5n": 4.6, "yolov5s": 16.6, "yolov5m": 49.2, "yolov5l": 109.6,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count_and_gflops(name):
    model = DetectionModel(f"{name}.yaml")
    assert count_parameters(model) == PARAMS[name]
    assert count_gflops(model, 640) == pytest.approx(GFLOPS[name], rel=0.02)
    assert model.stride.tolist() == [8.0, 16.0, 32.0]


@pytest.mark.parametrize("name", ["space_depth_n", "space_depth_s", "yolov5n", "yolov5s"])
def test_forward_backward_small_input(name):
    model = DetectionModel(f"{name}.yaml", nc=3)
    maps = model(torch.randn(2, 3, 64, 96))
    assert [m.shape for m in maps] == [(2, 3, 8, 12, 8), (2, 3, 4, 6, 8), (2, 3, 2, 3, 8)]
    sum(m.square().mean() for m in maps).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3 * (64 + 16 + 4), 8)


@pytest.mark.parametrize("name", ["space_depth_m", "space_depth_l", "yolov5m", "yolov5l"])
def test_large_configs_build_and_run(name):
    model = DetectionModel(f"{name}.yaml").eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 252, 85)


def test_state_dict_keys_follow_yaml_layout():
    keys = list(DetectionModel("yolov5n.yaml").state_dict())
    assert keys[0] == "model.0.conv.weight"
    assert keys[-1] == "model.24.m.2.bias"
    assert "model.24.anchors" in keys
    assert len(keys) == 349
    spd_keys = DetectionModel("space_depth_n.yaml").state_dict()
    assert "model.0.conv.conv.weight" in spd_keys and "model.30.anchors" in spd_keys


def test_fusion_keeps_outputs():
    model = DetectionModel("space_depth_n.yaml").eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        before = model(x)
        after = model.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    rel = (after - before).abs().max() / before.abs().max()
    assert rel < 1e-4


@pytest.mark.parametrize("name", ["space_depth_n", "yolov5n"])
def test_inference_form_keeps_outputs(name):
    model = DetectionModel(f"{name}.yaml").eval()
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        before = model(x)
        after = model.for_inference()(x)
    assert next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
    assert (after - before).abs().max() / before.abs().max() < 1e-4


def test_space_to_depth_rows_fold_into_the_next_c3_at_inference():
    from models.blocks import SpaceToDepth

    torch.manual_seed(0)
    model = DetectionModel("space_depth_n.yaml", nc=3).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # non-trivial features
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, 96, 128)
    model.detect.training = True  # raw maps, not boxes dominated by grid offsets
    with torch.no_grad():
        before = model(x)
        folded = model.for_inference()
        folded.detect.training = True
        after = folded(x)
    rows = [m for m in folded.modules() if isinstance(m, SpaceToDepth)]
    assert sum(m.folded for m in rows) == 4 and len(rows) == 6  # the backbone's four; the head's feed a Concat
    assert folded.model[3].cv1.conv.kernel_size == (2, 2) and folded.model[3].cv1.conv.stride == (2, 2)
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    kept = DetectionModel("space_depth_n.yaml", nc=3).for_inference(fold_space_to_depth=False)
    assert not any(m.folded for m in kept.modules() if isinstance(m, SpaceToDepth))


def test_channels_last_training_keeps_loss_and_gradients():
    from utils.detection.anchor_based_loss import YoloLoss

    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.2, 0.3], [1, 4, 0.3, 0.6, 0.05, 0.08]])
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(0)
        model = DetectionModel("space_depth_n.yaml").to(memory_format=fmt)
        loss, _ = YoloLoss(model.detect.anchors, model.nc)(model(x.contiguous(memory_format=fmt)), targets)
        loss.backward()
        results.append((loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (loss_a, grad_a), (loss_b, grad_b) = results
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    # float rounding only (another reduction order in BatchNorm's backward): 4e-5 to 1e-4 over input seeds
    assert (grad_a - grad_b).abs().max() / grad_a.abs().max() < 3e-4


def test_bare_config_name_resolves():
    assert resolve_config_path("space_depth_s.yaml").name == "space_depth_s.yaml"
    assert resolve_config_path("space_depth_s").name == "space_depth_s.yaml"
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_path("nope.yaml")


def _config_with_row(row, index=1):
    config = load_config("yolov5n.yaml")
    config["backbone"] = list(config["backbone"])
    config["backbone"][index] = row
    return config


@pytest.mark.parametrize("row, message", [
    ([-1, 1, "Mystery", [8]], "unknown module 'Mystery'"),
    ([-1, 1, "Conv"], r"\[from, number, module, args\]"),
    ([5, 1, "Conv", [8]], "points outside"),
    ([-1, 0, "Conv", [8]], "positive int"),
    ([-1, 1, "Conv", "oops"], "'args' must be a list"),
    ([-1, 1, "Conv", [8, 3, 1, 0, 1, 1, 1, 1, 1]], "cannot build Conv"),
    ([-1, 1, "Conv", ["__import__('os')"]], "layer 1"),
])
def test_bad_rows_name_the_row(row, message):
    with pytest.raises(ConfigError, match=message) as info:
        DetectionModel(_config_with_row(row))
    assert "layer 1" in str(info.value)
    assert "\n" not in str(info.value)


def test_model_summary_lists_layers_and_totals():
    text = DetectionModel("space_depth_n.yaml").info(640)
    assert "SpaceToDepth" in text and "2,256,157 parameters" in text and "8.9 GFLOPs" in text


def test_test_time_augmentation_maps_boxes_back():
    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=2).eval()
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        plain, augmented = model(x), model.forward_augmented(x)
    assert augmented.shape[0] == 1 and augmented.shape[1] > plain.shape[1]
    assert torch.equal(augmented[:, : plain.shape[1]], plain)  # the first pass is the plain one
    centres = augmented[0, :, :2]
    assert centres[:, 0].min() > -64 and centres[:, 0].max() < 128 + 64  # flipped and rescaled back


def test_channels_last_training_maps_are_views_of_the_head_convolutions():
    model = DetectionModel("yolov5n.yaml", nc=2).train().to(memory_format=torch.channels_last)
    outputs = []
    hooks = [conv.register_forward_hook(lambda m, i, o: outputs.append(o)) for conv in model.detect.m]
    maps = model(torch.rand(1, 3, 64, 64).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    for p, conv_out in zip(maps, outputs):
        assert p.shape[1] == 3 and p.shape[-1] == 7
        assert p.untyped_storage().data_ptr() == conv_out.untyped_storage().data_ptr()


def test_inference_decoding_in_place_equals_the_traceable_one():
    model = DetectionModel("space_depth_n.yaml", nc=3).for_inference()
    x = torch.rand(2, 3, 64, 96).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = model(x)
    with torch.enable_grad():  # the path tracing and autograd take
        traceable = model(x).detach()
    torch.testing.assert_close(fast, traceable, rtol=1e-6, atol=1e-5)
