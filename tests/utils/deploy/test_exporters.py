import json

import numpy as np
import pytest
import torch

import export
import val
from models.loading import load_model
from utils.checkpoints.files import convert_checkpoint
from utils.deploy.backends import load_any
from utils.detection.prediction import Detector

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(yolov5n_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    weights = convert_checkpoint(yolov5n_weights, folder / "yolov5n.pt")
    paths = export.export(str(weights), ["onnx", "torchscript"], imgsz=320, dynamic=True)
    return weights, {p.suffix: p for p in paths}


@pytest.mark.parametrize("suffix", [".onnx", ".torchscript"])
def test_exported_models_match_pytorch(exported, suffix, shared):
    weights, paths = exported
    reference = load_model(weights).fuse().eval()
    backend = load_any(paths[suffix], torch.device("cpu"))
    assert backend.names == reference.names and backend.stride.tolist() == [8.0, 16.0, 32.0]
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.rand(1, 3, 320, 320, generator=generator), torch.rand(2, 3, 256, 416, generator=generator)]
    import cv2

    bus = cv2.resize(cv2.imread(str(shared / "images" / "bus.jpg")), (480, 640))[..., ::-1]
    inputs.append(torch.from_numpy(bus.copy()).permute(2, 0, 1)[None].float() / 255)
    for k, x in enumerate(inputs):
        with torch.no_grad():
            want = reference(x)
        got = backend(x)
        assert got.shape == want.shape
        assert (got[..., 4:] - want[..., 4:]).abs().max() < 1e-5
        if k < 2:  # random inputs: boxes within 1e-3 px
            assert (got[..., :4] - want[..., :4]).abs().max() < 1e-3
        else:  # a real image has confident boxes of ~900 px, where float32 rounding of the two runtimes
            # differs by up to ~1.5e-3 px (measured): hold them to 1e-5 relative instead
            assert torch.allclose(got[..., :4], want[..., :4], rtol=1e-5, atol=1e-3)


def test_val_on_onnx_equals_pytorch(exported, shared, tmp_path):
    weights, paths = exported
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    # Both on the CPU: ONNX Runtime runs there, and a GPU's TF32 convolutions would move the PyTorch figures
    a = val.run(data=data, weights=str(weights), imgsz=320, project=str(tmp_path), plots=False, device="cpu")
    b = val.run(data=data, weights=str(paths[".onnx"]), imgsz=320, project=str(tmp_path), plots=False,
                device="cpu")
    assert b["mAP50_95"] == pytest.approx(a["mAP50_95"], abs=1e-4)
    assert b["coco"]["AP_S"] == pytest.approx(a["coco"]["AP_S"], abs=1e-4)


def test_detector_runs_exported_models(exported, shared):
    weights, paths = exported
    boxes = [Detector(p, device="cpu", imgsz=320).predict(shared / "images" / "zidane.jpg")[0].xyxy
             for p in (weights, paths[".onnx"])]
    assert np.allclose(boxes[0], boxes[1], atol=1e-2)


@pytest.mark.parametrize("suffix", [".onnx", ".torchscript"])
def test_garbage_exports_are_one_clear_error(suffix, tmp_path):
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(b"\x00not a model" * 100)
    with pytest.raises(ValueError, match=f"garbage{suffix}: not a readable"):
        load_any(garbage, torch.device("cpu"))


@pytest.mark.parametrize("kwargs, message", [({"opset": 5}, "supported opsets"), ({"imgsz": 0}, "--imgsz")])
def test_export_option_mistakes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        export.export("any.pt", ["onnx"], **kwargs)


def test_static_onnx_serves_any_batch_letterboxed_to_its_size(yolov5n_weights, shared, tmp_path):
    weights = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n.pt")
    static = export.export(str(weights), ["onnx"], imgsz=256, batch_size=2)[0]  # the default: fixed shape
    backend = load_any(static, torch.device("cpu"))
    assert backend.fixed_shape == (256, 256) and backend.fixed_batch == 2
    reference = load_model(weights).fuse().eval()
    x = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))  # one full batch, one padded
    with torch.no_grad():
        want = reference(x)
    assert (backend(x)[..., 4:] - want[..., 4:]).abs().max() < 1e-5
    with pytest.raises(ValueError, match="exported for 256x256 inputs only, got 320x256"):
        backend(torch.rand(1, 3, 320, 256))
    # val.py and detect.py letterbox to the exported size whatever --imgsz says, and agree with PyTorch there
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    on_static = val.run(data=data, weights=str(static), imgsz=640, batch_size=5, project=str(tmp_path),
                        plots=False, device="cpu")
    on_torch = val.run(data=data, weights=str(weights), imgsz=256, project=str(tmp_path), plots=False, device="cpu")
    assert json.loads((tmp_path / "exp" / "metrics.json").read_text())["imgsz"] == 256
    assert on_static["coco"]["AP"] == pytest.approx(on_torch["coco"]["AP"], abs=0.01)  # square vs rect padding
    found = Detector(static, device="cpu", imgsz=640).predict(shared / "images" / "bus.jpg")[0].xyxy
    assert Detector(static, device="cpu").imgsz == (256, 256) and len(found) >= 3


def test_int8_export_keeps_the_detections(yolov5n_weights, shared, tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    weights = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n.pt")
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    fp32, int8 = export.export(str(weights), ["onnx"], imgsz=320, int8=True, data=data, calib_images=16)
    assert int8.name == "yolov5n_int8.onnx" and int8.stat().st_size < fp32.stat().st_size / 2
    found = [Detector(p, device="cpu").predict(shared / "images" / "bus.jpg")[0] for p in (fp32, int8)]
    assert load_any(int8, torch.device("cpu")).names == load_any(fp32, torch.device("cpu")).names
    assert len(found[0].xyxy) >= 4 and len(found[1].xyxy) >= len(found[0].xyxy) - 1
    from torchvision.ops import box_iou

    iou = box_iou(torch.as_tensor(found[0].xyxy), torch.as_tensor(found[1].xyxy))
    same_class = torch.as_tensor(found[0].classes)[:, None] == torch.as_tensor(found[1].classes)[None]
    assert (iou * same_class).max(1).values.min() > 0.85  # every FP32 detection has an INT8 twin


def test_int8_needs_the_onnx_or_openvino_export():
    with pytest.raises(ValueError, match="add onnx or openvino to --include"):
        export.export("any.pt", ["torchscript"], int8=True)


@pytest.mark.parametrize("half", [False, True])
def test_openvino_export_runs_in_val_and_detect(yolov5n_weights, shared, tmp_path, half):
    pytest.importorskip("openvino", reason="the optional [openvino] extra is not installed")
    weights = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n.pt")
    (folder,) = export.export(str(weights), ["openvino"], imgsz=256, half=half)
    assert folder.name == "yolov5n_openvino_model" and not (tmp_path / "yolov5n.onnx").exists()
    backend = load_any(folder, torch.device("cpu"))
    assert backend.fixed_shape == (256, 256) and backend.names == load_model(weights).names
    reference = load_model(weights).fuse().eval()
    x = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = reference(x)
    assert (backend(x)[..., 4:] - want[..., 4:]).abs().max() < (2e-3 if half else 1e-4)
    found = Detector(folder, device="cpu").predict(shared / "images" / "bus.jpg")[0]
    assert {"person", "bus"} <= set(found.names_of())
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    on_openvino = val.run(data=data, weights=str(folder), batch_size=8, project=str(tmp_path), plots=False,
                          device="cpu")
    on_onnx = val.run(data=data, weights=str(export.export(str(weights), ["onnx"], imgsz=256)[0]), batch_size=8,
                      project=str(tmp_path), plots=False, device="cpu")
    assert on_openvino["coco"]["AP"] == pytest.approx(on_onnx["coco"]["AP"], abs=0.002)


def test_fp16_onnx_exports_on_the_cpu_with_the_head_in_fp32(yolov5n_weights, shared, tmp_path):
    pytest.importorskip("onnxruntime.transformers.float16")
    weights = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n.pt")
    (path,) = export.export(str(weights), ["onnx"], imgsz=320, half=True, dynamic=True)
    backend = load_any(path, torch.device("cpu"))
    assert backend.fp16 and backend.session.get_outputs()[0].type == "tensor(float)"
    import cv2

    bus = cv2.resize(cv2.imread(str(shared / "images" / "bus.jpg")), (320, 416))[..., ::-1]
    x = torch.from_numpy(bus.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = load_model(weights).fuse().eval()(x)
    got = backend(x)
    assert (got[..., 4:] - want[..., 4:]).abs().max() < 1e-2  # FP16 features, FP32 sigmoid and decoding
    confident = want[0, :, 4] > 0.5
    assert confident.sum() >= 4 and (got[0, confident, :4] - want[0, confident, :4]).abs().max() < 1.0  # pixels
    found = Detector(path, device="cpu").predict(shared / "images" / "bus.jpg")[0]
    assert {"person", "bus"} <= set(found.names_of())


def test_engine_export_needs_cuda_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="needs a CUDA GPU: --device cpu is not one"):
        export.export(str(tmp_path / "missing.pt"), ["engine"], device="cpu")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(ValueError, match="runs on a CUDA GPU only"):
        load_any(engine, torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="TensorRT needs a CUDA GPU")
def test_engine_export_runs_in_val_within_fp16_noise(yolov5n_weights, shared, tmp_path):
    pytest.importorskip("tensorrt", reason="tensorrt is not installed")
    weights = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n.pt")
    (engine,) = export.export(str(weights), ["engine"], imgsz=640, batch_size=8, half=True, dynamic=True,
                              device="0")
    assert not (tmp_path / "yolov5n.onnx").exists()
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    on_engine = val.run(data=data, weights=str(engine), batch_size=8, project=str(tmp_path), plots=False,
                        device="0")
    on_torch = val.run(data=data, weights=str(weights), batch_size=8, project=str(tmp_path), plots=False,
                       device="0", half=True)
    assert on_engine["coco"]["AP"] == pytest.approx(on_torch["coco"]["AP"], abs=0.002)


def test_spd_model_exports_native_space_to_depth_with_the_same_outputs(tmp_path):
    import onnx

    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    model = DetectionModel("space_depth_n.yaml").eval()
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model)}, tmp_path / "spd.pt")
    (path,) = export.export(str(weights), ["onnx"], imgsz=128, dynamic=True)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("SpaceToDepth") >= 6  # each SPD layer one native node, no 6-D transposes
    x = torch.rand(2, 3, 128, 192, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x)
    got = load_any(path, torch.device("cpu"))(x)
    assert (got[..., 4:] - want[..., 4:]).abs().max() < 1e-5 and (got[..., :4] - want[..., :4]).abs().max() < 1e-3


def test_openvino_int8_export_keeps_the_detections(yolov5n_weights, shared, tmp_path):
    pytest.importorskip("openvino", reason="the optional [openvino] extra is not installed")
    pytest.importorskip("nncf", reason="the optional [openvino] extra is not installed")
    weights = convert_checkpoint(yolov5n_weights, tmp_path / "yolov5n.pt")
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    fp32, int8 = export.export(str(weights), ["openvino"], imgsz=320, int8=True, data=data, calib_images=16)
    assert int8.name == "yolov5n_int8_openvino_model"
    assert json.loads((int8 / "yolov5_spd.json").read_text())["precision"] == "INT8"
    found = [Detector(p, device="cpu").predict(shared / "images" / "bus.jpg")[0] for p in (fp32, int8)]
    assert {"person", "bus"} <= set(found[1].names_of())
    from torchvision.ops import box_iou

    iou = box_iou(torch.as_tensor(found[0].xyxy), torch.as_tensor(found[1].xyxy))
    same_class = torch.as_tensor(found[0].classes)[:, None] == torch.as_tensor(found[1].classes)[None]
    assert (iou * same_class).max(1).values.min() > 0.85  # every FP32 detection has an INT8 twin


def test_paper_order_spd_exports_folded_and_equal(tmp_path):
    """yolo11n_spd: every SPDConv leaves the ONNX graph as one strided Conv (no SpaceToDepth node); same outputs,
    and the export knows its anchor-free family."""
    import onnx

    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    torch.manual_seed(0)
    model = DetectionModel("yolo11n_spd.yaml", nc=3)
    model.names = ["a", "b", "c"]
    save_checkpoint({"format": FORMAT, "model": model_payload(model), "ema": None, "epoch": 0}, tmp_path / "spd.pt")
    (path,) = export.export(str(tmp_path / "spd.pt"), ["onnx"], imgsz=128)
    assert not [n for n in onnx.load(str(path)).graph.node if n.op_type == "SpaceToDepth"]
    backend = load_any(path, torch.device("cpu"))
    assert backend.anchor_based is False
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(backend(x), load_model(tmp_path / "spd.pt")(x), atol=1e-3)


@pytest.mark.parametrize("change, message", [({"names": ["a", "b", "c"]}, "names 3 classes but the network outputs 2"),
                                             ({"names": "ab"}, "'names' must be a non-empty list"),
                                             ({"stride": []}, "'stride' must be a non-empty list"),
                                             ({"nms": True, "max_det": 300}, "metadata says an NMS graph")])
def test_tampered_export_metadata_is_one_line(tmp_path, change, message):
    import onnx

    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT
    from utils.deploy.backends import METADATA_KEY

    model = DetectionModel("yolov5n.yaml", nc=2)
    model.names = ["a", "b"]
    save_checkpoint({"format": FORMAT, "model": model_payload(model), "ema": None, "epoch": 0}, tmp_path / "m.pt")
    (path,) = export.export(str(tmp_path / "m.pt"), ["onnx"], imgsz=64)
    proto = onnx.load(str(path))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    entry.value = json.dumps({**json.loads(entry.value), **change})
    onnx.save(proto, str(path))
    with pytest.raises(ValueError, match=message):
        load_any(path, torch.device("cpu"))
