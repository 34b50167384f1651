"""INT8 post-training quantisation of an exported ONNX model (ONNX Runtime, static, QDQ format).

Calibration images come from the training split of a dataset YAML (the first ``count`` usable images in a
fixed, evenly spaced order), letterboxed to the export size as val.py and detect.py feed them. Weights are
quantised per output channel to 7 bits (so that CPUs without VNNI cannot overflow), activations per tensor
from their calibrated range (the moving average of each batch's min and max). The detection head (its 1×1
convolutions and the box decoding) stays in float: its outputs are pixel coordinates and probabilities, which
an 8-bit grid would round by whole pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.data.augmentations import letterbox
from utils.data.formats import load_dataset_config
from utils.data.images import read_rgb
from utils.data.scan import scan_split
from utils.logging import LOGGER


def calibration_batches(data: str, imgsz: int | tuple[int, int], count: int, batch_size: int = 1) -> list[np.ndarray]:
    """``count`` training images of ``data`` as (batch, 3, h, w) float32 RGB in [0, 1] (``imgsz``: a size or
    (h, w))."""
    shape = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    config = load_dataset_config(data)
    scan = scan_split(config, "train")
    if not scan.images:
        raise ValueError(f"{config['yaml_file']}: no usable training image for INT8 calibration")
    picks = np.linspace(0, len(scan.images) - 1, min(count, len(scan.images))).round().astype(int)
    images = []
    for index in dict.fromkeys(picks.tolist()):
        rgb = read_rgb(scan.images[index])
        if rgb is None:
            continue
        boxed, _, _ = letterbox(rgb, shape, scale_up=True)
        images.append(boxed.transpose(2, 0, 1).astype(np.float32) / 255)
    usable = len(images) - len(images) % batch_size
    if usable == 0:
        raise ValueError(f"{config['yaml_file']}: fewer calibration images than one batch of {batch_size}")
    return [np.stack(images[i:i + batch_size]) for i in range(0, usable, batch_size)]


def head_nodes(model_path: Path, head_index: int) -> list[str]:
    """Names of the ONNX nodes exported from the detection head (module ``model.<head_index>``)."""
    import onnx

    prefix = f"/model.{head_index}/"
    return [node.name for node in onnx.load(str(model_path)).graph.node if node.name.startswith(prefix)]


def quantize_int8(fp32_path: Path, out_path: Path, batches: list[np.ndarray], head_index: int) -> Path:
    """Write the INT8 (QDQ) form of ``fp32_path`` to ``out_path``, calibrated on ``batches``."""
    import tempfile

    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load(str(fp32_path)).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"  # shapes inferred and constants folded, as ONNX Runtime advises
        quant_pre_process(str(fp32_path), str(prepared))
        return _quantize(prepared, out_path, batches, head_index, input_name)


def _quantize(prepared: Path, out_path: Path, batches: list[np.ndarray], head_index: int, input_name: str) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feed = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self.feed, None)
            return None if batch is None else {input_name: batch}

    excluded = head_nodes(prepared, head_index)
    if not excluded:
        raise ValueError(f"{prepared}: no node of the detection head (model.{head_index}) found to keep in float")
    quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                    # 7-bit weights: x86 CPUs without VNNI (AVX2, early AVX-512) multiply u8 x s8 pairs into a
                    # saturating 16-bit sum, which on yolov5n lost a person and added two false plants on
                    # bus.jpg; with 7 bits no pair sum can overflow, so every CPU gives the same detections
                    reduce_range=True,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                   # activation ranges averaged over the calibration batches instead of the
                                   # extremes of any one: yolov5n at 640, ΔAP -0.017 -> -0.006
                                   "CalibMovingAverage": True})
    LOGGER.info(f"INT8: calibrated on {sum(len(b) for b in batches)} images, {len(excluded)} head nodes kept in "
                f"float")
    return out_path
