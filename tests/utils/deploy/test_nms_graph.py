"""export.py --nms: an ONNX graph with NMS inside gives val.py the plain export's AP and detect.py its boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import export
import val
from utils.boxes import non_max_suppression
from utils.checkpoints.files import convert_checkpoint
from utils.deploy.backends import load_any
from utils.deploy.nms_graph import NmsGraph, split_detections
from utils.detection.prediction import Detector


@pytest.fixture(scope="module")
def exports(yolov5n_weights, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    folder = tmp_path_factory.mktemp("nms")
    weights = convert_checkpoint(yolov5n_weights, folder / "yolov5n.pt")
    (plain,) = export.run(weights=str(weights), include=["onnx"], imgsz=256, dynamic=True)
    (with_nms,) = export.run(weights=str(weights), include=["onnx"], imgsz=256, dynamic=True, nms=True)
    return weights, plain, with_nms


def test_the_eager_graph_equals_nms_on_the_outputs(yolov5n_weights):
    model = load_any(yolov5n_weights, torch.device("cpu")).for_inference()
    x = torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rows = NmsGraph(model, 300)(x, torch.tensor([0.5]), torch.tensor([0.01]))
        want = non_max_suppression(model(x), 0.01, 0.5, multi_label=True, max_det=300)
    for got, expected in zip(split_detections(rows, 2, 300), want):
        order = expected[:, 4].argsort(descending=True)
        assert torch.allclose(got, expected[order], atol=1e-4)


def test_val_ap_of_the_nms_graph_equals_the_plain_export(exports, shared, tmp_path):
    _, plain, with_nms = exports
    data = str(shared / "data" / "coco128" / "coco128.yaml")
    options = dict(data=data, imgsz=256, project=str(tmp_path), plots=False, device="cpu")
    ours, theirs = val.run(weights=str(with_nms), **options), val.run(weights=str(plain), **options)
    for key in ("AP", "AP50", "AP_S"):
        assert ours["coco"][key] == pytest.approx(theirs["coco"][key], abs=0.002), key


def test_detect_with_the_nms_graph_finds_the_plain_exports_boxes(exports, shared):
    _, plain, with_nms = exports
    image = shared / "images" / "bus.jpg"
    a = Detector(with_nms, device="cpu", imgsz=320)(image)[0]
    b = Detector(plain, device="cpu", imgsz=320)(image)[0]
    assert len(a) == len(b) and np.allclose(np.sort(a.scores), np.sort(b.scores), atol=1e-4)
    with pytest.raises(ValueError, match="call detect"):
        load_any(with_nms, torch.device("cpu"))(torch.zeros(1, 3, 64, 64))


def test_openvino_nms_graph_matches_the_onnx_one(exports, shared, tmp_path):
    """--include openvino --nms: the IR with NMS inside scores as the ONNX graph with NMS (the [openvino] extra)."""
    pytest.importorskip("openvino")
    weights, _, with_nms = exports
    (ir,) = export.run(weights=str(weights), include=["openvino"], imgsz=256, dynamic=True, nms=True)
    options = dict(data=str(shared / "data" / "coco128" / "coco128.yaml"), imgsz=256, project=str(tmp_path),
                   plots=False, device="cpu")
    ours, theirs = val.run(weights=str(ir), **options), val.run(weights=str(with_nms), **options)
    for key in ("AP", "AP50", "AP_S"):
        assert ours["coco"][key] == pytest.approx(theirs["coco"][key], abs=0.002), key
    boxes = Detector(ir, device="cpu", imgsz=320)(shared / "images" / "bus.jpg")[0]
    assert len(boxes) >= 4 and with_nms.is_file()


def test_an_openvino_export_leaves_an_existing_onnx_alone(exports, monkeypatch):
    """The intermediate ONNX graph of an OpenVINO-only export goes to a temporary folder: the user's
    <weights>_nms.onnx beside the weights is neither replaced nor deleted."""
    from utils.deploy import exporters

    weights, _, with_nms = exports
    before = with_nms.read_bytes()
    seen = []

    def fake_openvino(onnx_path, path, meta, half):
        seen.append(onnx_path)
        assert onnx_path.is_file()
        folder = path.with_name("fake_openvino_model")
        folder.mkdir(exist_ok=True)
        (folder / "model.xml").write_text("<net/>")
        return folder

    monkeypatch.setattr(exporters, "_openvino", fake_openvino)
    export.run(weights=str(weights), include=["openvino"], imgsz=128, dynamic=True, nms=True)
    assert seen[0].parent != with_nms.parent and not seen[0].exists()
    assert with_nms.read_bytes() == before


@pytest.mark.parametrize("options, message", [(dict(include=["torchscript"]), "ONNX and OpenVINO graphs only"),
                                              (dict(include=["onnx"], half=True), "FP32 graphs"),
                                              (dict(include=["onnx"], max_det=0), "--max-det")])
def test_nms_option_mistakes(options, message):
    with pytest.raises(ValueError, match=message):
        export.run(weights="any.pt", nms=True, **options)
