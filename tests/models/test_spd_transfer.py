import copy
import re
import subprocess
import sys

import pytest
import torch

import models.spd_transfer as spd_transfer
from models.blocks import SPP
from models.graph_signature import graph_difference
from models.loading import load_model
from models.parser import load_config
from models.spd_transfer import TransferError, spd_config, transfer_state
from models.yolo import DetectionModel
from utils.checkpoints.files import load_checkpoint
from utils.deploy.convert_weights import main as convert_main

ROOT = spd_transfer.__file__.rsplit("/models/", 1)[0]


def _randomised(cfg, seed: int = 0, nc: int | None = None) -> DetectionModel:
    """A YOLOv5 model with random weights *and* random BatchNorm statistics (so a mis-mapped BN shows)."""
    torch.manual_seed(seed)
    model = DetectionModel(cfg, nc=nc)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _outputs(model: DetectionModel, x: torch.Tensor, inference_form: bool) -> torch.Tensor:
    model = copy.deepcopy(model)
    if inference_form:
        model.for_inference()
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        return model.eval()(x)


def _assert_close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    scale = a.abs().max().clamp_min(1e-12)
    assert (a - b).abs().max() / scale <= rel, float((a - b).abs().max() / scale)


def _spd_pair(source_cfg, target_cfg=None, seed=0):
    source = _randomised(source_cfg, seed)
    target = DetectionModel(target_cfg or spd_config(source_cfg).config)
    report = transfer_state(source.state_dict(), dict(source.yaml), target)
    return source, target.eval(), report


@pytest.mark.parametrize("scale", ["n", "s"])
def test_yolov5_configs_convert_to_the_shipped_spd_configs(scale):
    assert graph_difference(spd_config(f"yolov5{scale}.yaml").config, load_config(f"space_depth_{scale}.yaml"),
                            80) is None


@pytest.mark.parametrize("size", ["n", "s", "m", "l"])
def test_shipped_p2_configs_are_the_spd_forms_of_the_yolov5_p2_configs(size):
    assert graph_difference(spd_config(f"yolov5{size}_p2.yaml").config, load_config(f"space_depth_{size}_p2.yaml"),
                            80) is None
    yolov5, spd = load_config(f"yolov5{size}_p2.yaml"), load_config(f"space_depth_{size}_p2.yaml")
    assert (yolov5["depth_multiple"], yolov5["width_multiple"]) == (spd["depth_multiple"], spd["width_multiple"])
    assert (yolov5["depth_multiple"], yolov5["width_multiple"]) == {"n": (0.33, 0.25), "s": (0.33, 0.5),
                                                                      "m": (0.67, 0.75), "l": (1.0, 1.0)}[size]


@pytest.mark.parametrize("scale", ["s", "m", "l"])
def test_random_yolov5_maps_exactly_into_space_depth(scale):
    source, target, report = _spd_pair(f"yolov5{scale}.yaml", f"space_depth_{scale}.yaml")
    assert report.mode == "spd" and report.function_preserving
    assert report.transferred == report.total == len(source.state_dict())
    x = torch.rand(1, 3, 64, 96)
    _assert_close(_outputs(source, x, False), _outputs(target, x, False))
    _assert_close(_outputs(source, x, True), _outputs(target, x, True))


def test_p2_graph_maps_exactly():
    source, target, report = _spd_pair("yolov5n_p2.yaml", "space_depth_n_p2.yaml", seed=1)
    assert report.function_preserving and len(target.stride) == 4
    x = torch.rand(2, 3, 96, 64)
    _assert_close(_outputs(source, x, True), _outputs(target, x, True))


def _v5x_config() -> dict:
    """A YOLOv5 v5.x layout: Focus stem, SPP(5, 9, 13) before the last C3."""
    cfg = copy.deepcopy(load_config("yolov5n.yaml"))
    cfg.pop("_source")
    backbone = cfg["backbone"]
    backbone[0] = [-1, 1, "Focus", [64, 3]]
    backbone[8], backbone[9] = [-1, 1, "SPP", [1024, [5, 9, 13]]], [-1, 3, "C3", [1024, False]]
    return cfg


def test_v5x_focus_and_spp_graph_maps_exactly():
    source, target, report = _spd_pair(_v5x_config(), seed=2)
    assert isinstance(target.model[12], SPP) and report.function_preserving
    x = torch.rand(1, 3, 64, 64)
    _assert_close(_outputs(source, x, False), _outputs(target, x, False))


def test_spp_5_9_13_copies_onto_sppf_5():
    cfg = copy.deepcopy(load_config("yolov5n.yaml"))
    cfg.pop("_source")
    cfg["backbone"][9] = [-1, 1, "SPP", [1024, [5, 9, 13]]]
    source, target, report = _spd_pair(cfg, "space_depth_n.yaml", seed=3)
    assert report.function_preserving
    x = torch.rand(1, 3, 64, 64)
    _assert_close(_outputs(source, x, False), _outputs(target, x, False))


def test_negative_control_wrong_phase_group_changes_outputs(monkeypatch):
    """The equality tests can fail: the same weights placed on another space-to-depth block differ."""
    original = spd_transfer._embed_input

    def wrong_phase(weight, index, channels):
        return original(weight, (index + channels // 4) % channels, channels)

    monkeypatch.setattr(spd_transfer, "_embed_input", wrong_phase)
    source, target, _ = _spd_pair("yolov5n.yaml", "space_depth_n.yaml")
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(AssertionError):
        _assert_close(_outputs(source, x, False), _outputs(target, x, False))


def test_parameter_counts_stay_the_published_ones():
    _, target, _ = _spd_pair("yolov5n.yaml", "space_depth_n.yaml")
    assert sum(p.numel() for p in target.parameters()) == 2_256_157


def test_zero_weights_get_gradients():
    """Fine-tuning can learn to use the phases a strided conv skipped: their weights receive gradients."""
    _, target, _ = _spd_pair("yolov5n.yaml", "space_depth_n.yaml")
    target.train()
    maps = target(torch.rand(2, 3, 64, 64))
    sum(m.float().pow(2).mean() for m in maps).backward()
    weight = target.model[3].cv1.conv.weight  # C3 after the first SpaceToDepth: 4 blocks of 32 channels
    c = weight.shape[1] // 4
    assert torch.count_nonzero(weight[:, c:]) == 0
    zero_grad, copied_grad = weight.grad[:, c:].abs().mean(), weight.grad[:, :c].abs().mean()
    assert zero_grad > 0.1 * copied_grad


def test_other_graph_is_refused_with_the_layer_or_partially_copied():
    source = _randomised("yolov5s.yaml")
    target = DetectionModel("space_depth_n.yaml")
    with pytest.raises(TransferError, match="layer 0 differs"):
        transfer_state(source.state_dict(), dict(source.yaml), target)
    report = transfer_state(source.state_dict(), dict(source.yaml), target, allow_partial=True)
    assert report.mode == "partial" and not report.function_preserving
    assert "NOT function-preserving" in report.line("yolov5s.pt")


def test_new_class_count_keeps_everything_but_the_class_rows():
    source = _randomised("yolov5n.yaml")
    target = DetectionModel("space_depth_n.yaml", nc=3)
    report = transfer_state(source.state_dict(), dict(source.yaml), target)
    assert report.skipped == ["model.30.m.0.bias", "model.30.m.0.weight", "model.30.m.1.bias",
                              "model.30.m.1.weight", "model.30.m.2.bias", "model.30.m.2.weight"]
    assert report.transferred == report.total - 6 and not report.function_preserving


def test_repeated_strided_conv_has_no_spd_form():
    cfg = copy.deepcopy(load_config("yolov5n.yaml"))
    cfg.pop("_source")
    cfg["backbone"][1] = [-1, 2, "Conv", [128, 3, 2]]
    with pytest.raises(ValueError, match="repeated strided Conv"):
        spd_config(cfg)


def test_config_command_writes_a_buildable_config(tmp_path):
    out = tmp_path / "spd.yaml"
    subprocess.run([sys.executable, "-m", "models.spd_transfer", "yolov5s.yaml", str(out)], check=True, cwd=ROOT)
    assert graph_difference(load_config(out), load_config("space_depth_s.yaml"), 80) is None
    again = subprocess.run([sys.executable, "-m", "models.spd_transfer", "yolov5s.yaml", str(out)], cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr


# ------------------------------------------------------------------------ the official YOLOv5n (../shared)
def test_official_yolov5n_into_space_depth_n_is_exact(yolov5n_weights, tmp_path, capsys):
    out = tmp_path / "space_depth_n_from_yolov5n.pt"
    convert_main([str(yolov5n_weights), str(out), "--cfg", "space_depth_n.yaml"])
    assert "transferred 349/349 tensors" in capsys.readouterr().out
    torch.load(out, weights_only=True)  # our format: no pickled code
    spd, official = load_model(out), load_model(yolov5n_weights)
    assert spd.yaml["backbone"][0][2] == "Focus" and spd.names == official.names
    x = torch.rand(1, 3, 128, 160)
    _assert_close(_outputs(official, x, True), _outputs(spd, x, True), rel=1e-6)
    _assert_close(_outputs(official, x, False), _outputs(spd, x, False))


def test_converter_refuses_an_unmappable_pair(yolov5n_weights, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        convert_main([str(yolov5n_weights), str(tmp_path / "x.pt"), "--cfg", "space_depth_s.yaml"])
    assert stopped.value.code == 1 and re.search("^error: .*layer .* differs", capsys.readouterr().err)
    assert not (tmp_path / "x.pt").exists()


def test_official_yolov5n_spd_form_via_spd_flag(yolov5n_weights, tmp_path, capsys):
    out = tmp_path / "spd.pt"
    convert_main([str(yolov5n_weights), str(out), "--spd"])
    assert "function-preserving" in capsys.readouterr().out
    ckpt = load_checkpoint(out)
    assert graph_difference(ckpt["model"]["config"], load_config("space_depth_n.yaml"), 80) is None


def test_val_figures_of_the_converted_model_equal_the_official(shared, yolov5n_weights, tmp_path):
    import val

    spd = tmp_path / "spd.pt"
    convert_main([str(yolov5n_weights), str(spd), "--cfg", "space_depth_n.yaml"])
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    results = [val.run(data=data, weights=str(w), imgsz=320, batch_size=32, project=str(tmp_path), name=w.stem,
                       plots=False, workers=2, device="cpu") for w in (yolov5n_weights, spd)]
    official, converted = results
    for key in ("P", "R", "mAP50", "mAP50_95"):
        assert converted[key] == pytest.approx(official[key], abs=1e-6), key
    for key in ("AP", "AP50", "AP_S", "AP_M", "AP_L", "AP_t", "AP_s16"):
        assert converted["coco"][key] == pytest.approx(official["coco"][key], abs=1e-6), key
    assert official["coco"]["AP"] == pytest.approx(0.2932, abs=0.001)


@pytest.mark.parametrize(("size", "params_m", "gflops"), [("n", 3.2, 4.6), ("s", 12.6, 16.8)])
def test_p6_configs_match_the_published_yolov5_p6_models_and_their_spd_forms(size, params_m, gflops):
    from models.summary import count_gflops, count_parameters

    model = DetectionModel(f"yolov5{size}6.yaml")
    assert round(count_parameters(model) / 1e6, 1) == params_m  # YOLOv5 v6.1 release table
    assert abs(count_gflops(model, 640) - gflops) < 0.1 and model.stride.tolist() == [8, 16, 32, 64]
    assert graph_difference(spd_config(f"yolov5{size}6.yaml").config, load_config(f"space_depth_{size}6.yaml"),
                            80) is None


def _random_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics away from their defaults, so that a misplaced tensor shows."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.6 - 0.3)
    return model.eval()


def _real_image(size: tuple[int, int] = (160, 224)) -> torch.Tensor:
    import cv2

    from tests.conftest import SHARED

    path = SHARED / "images" / "bus.jpg"
    image = cv2.imread(str(path)) if path.is_file() else None
    if image is None:  # a generated scene when ../shared is absent
        from utils.data.synthetic import render_scene

        image = render_scene(torch.Generator().manual_seed(0).seed() % 1000)[0]
    image = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)[..., ::-1]
    return torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("name,order", [("yolo11n", "spd_first"), ("yolov8n", "spd_first"), ("yolo11n", "conv_first"),
                                        ("yolov8n", "conv_first"), ("yolov8n_p2", "spd_first")])
def test_anchor_free_graphs_map_exactly_into_their_spd_forms(name, order):
    torch.manual_seed(0)
    source = _random_statistics(DetectionModel(f"{name}.yaml", nc=4))
    target = DetectionModel(spd_config(f"{name}.yaml", order).config, nc=4).eval()
    report = transfer_state(source.state_dict(), dict(source.yaml), target)
    assert report.function_preserving and report.transferred == report.total
    x = _real_image()
    with torch.no_grad():
        expected = source(x)
        assert (target(x) - expected).abs().max() <= 1e-4 * max(1.0, float(expected.abs().max()) / 100)
        assert torch.allclose(target.for_inference()(x), expected, atol=2e-3)  # folded: 6x6 stride-2 convs


@pytest.mark.parametrize("family", ["yolo11", "yolov8"])
def test_shipped_spd_configs_are_the_spd_forms_and_parse_at_every_size(family):
    for size in "nslmx":
        shipped = load_config(f"{family}{size}_spd.yaml")
        assert shipped["scale"] == size
        assert graph_difference(spd_config(f"{family}{size}.yaml").config, shipped, 80) is None
    assert sum(p.numel() for p in DetectionModel(f"{family}n_spd.yaml").parameters()) == \
        {"yolo11": 4_629_856, "yolov8": 4_886_496}[family]


def test_ultralytics_weights_start_an_spd_model_exactly(shared, tmp_path, capsys):
    reference = shared / "reference" / "ultralytics" / "yolo11n_smallobj.pt"
    if not reference.is_file():
        pytest.skip("../shared/reference/ultralytics/yolo11n_smallobj.pt is absent")
    from models.loading import model_from_weights

    model, report = model_from_weights(load_checkpoint(reference), "yolo11n_spd.yaml")
    assert report.line("yolo11n.pt").startswith("transferred 499/499 tensors") and report.function_preserving
    strided = load_model(reference)
    x = _real_image((256, 256))
    with torch.no_grad():
        ours, theirs = model.eval()(x), strided(x)
    assert (ours[..., 4:] - theirs[..., 4:]).abs().max() <= 1e-4  # class probabilities
    assert (ours[..., :4] - theirs[..., :4]).abs().max() <= 1e-4 * 256  # boxes: float32 rounding of the pixels


def test_a_yolov5_graph_takes_spdconv_rows_when_an_order_is_asked_for():
    graph = spd_config("yolov5n.yaml", "spd_first")
    rows = graph.config["backbone"] + graph.config["head"]
    assert rows[0][2] == "Focus" and [r[2] for r in rows].count("SPDConv") == 6
    assert not any(r[2] == "SpaceToDepth" for r in rows)
    torch.manual_seed(0)
    source = _random_statistics(DetectionModel("yolov5n.yaml", nc=3))
    target = DetectionModel(graph.config, nc=3).eval()
    assert transfer_state(source.state_dict(), dict(source.yaml), target).function_preserving
    x = _real_image((128, 160))
    with torch.no_grad():
        assert torch.allclose(target(x), source(x), atol=1e-3)
