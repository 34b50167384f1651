"""Export a checkpoint for deployment: ONNX (FP32, FP16, INT8), TorchScript, OpenVINO IR, TensorRT engine.

Every file carries what running it needs (class names, strides, the export size), so val.py and detect.py
take it as ``--weights`` with no other option; a static (fixed-shape) export is fed letterboxed square batches
of its size. Optional packages (onnx + onnxruntime: the ``[export]`` extra; openvino: ``[openvino]``;
tensorrt, with a CUDA GPU) are imported only by the format that needs them, and their absence is one line
naming the package.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.loading import load_model
from utils.checkpoints.files import dataset_for, resolve_weights
from utils.deploy.backends import ENGINE_HEADER, METADATA_KEY, OPENVINO_METADATA
from utils.distributed import select_device
from utils.image_size import check_image_size
from utils.logging import LOGGER
from utils.options import ConfigurationError, JobOptions, one_or_several
from utils.wording import face_command, install_hint

FORMATS = ("onnx", "torchscript", "openvino", "engine")


@dataclass
class ExportOptions(JobOptions):
    """export.py's options (its flags' names), checked when made: the ``include`` formats, the input size (a
    size or [h, w]) and batch, dynamic axes, FP16, ONNX opset, the device, INT8 calibrated on ``calib_images``
    training images of ``data``, and NMS inside the graph keeping ``max_det`` boxes per class and image."""

    weights: str = ""
    include: list[str] = field(default_factory=lambda: ["onnx"])
    imgsz: int | list[int] = 640
    batch_size: int = 1
    dynamic: bool = False
    half: bool = False
    simplify: bool = False
    opset: int = 17
    device: str = "cpu"
    int8: bool = False
    data: str | None = None
    calib_images: int = 200
    nms: bool = False
    max_det: int = 300

    def check(self) -> None:
        if not self.weights:
            raise ConfigurationError("--weights: name the checkpoint to export")
        self.imgsz = one_or_several(self.imgsz)
        _check_options(self)
        _check_nms_options(self)
        check_image_size(self.imgsz, 1, batch_size=self.batch_size, quiet=True)  # rounded once loaded


def export(options: ExportOptions | None = None, **keywords) -> list[Path]:
    """Write the ``include`` formats beside the checkpoint (``<weights>.onnx``, ``.torchscript``,
    ``<weights>_openvino_model/``, ``.engine``; with ``int8`` also ``<weights>_int8.onnx`` (ONNX Runtime) and
    ``<weights>_int8_openvino_model/`` (NNCF), static INT8 calibrated on ``calib_images`` training images of
    ``data``); returns the paths. Options as an :class:`ExportOptions` or as keywords.

    ``half``: FP16 ONNX (converted from the FP32 graph, the detection head kept in FP32 so boxes are not
    rounded to FP16's half-pixel grid at 640), FP16 OpenVINO weights, an FP16 TensorRT engine, and an FP16
    TorchScript trace on CUDA.

    ``nms``: ONNX and OpenVINO graphs with NMS inside (``<weights>_nms.onnx``, ``<weights>_nms_openvino_model/``;
    :mod:`utils.deploy.nms_graph`), at most ``max_det`` boxes per class and image."""
    o = options or ExportOptions.from_dict(keywords, "export")
    weights, include, imgsz, batch_size, dynamic = o.weights, o.include, o.imgsz, o.batch_size, o.dynamic
    half, int8, device, nms, max_det = o.half, o.int8, o.device, o.nms, o.max_det
    torch_device = select_device(device)
    if "engine" in include and torch_device.type != "cuda":
        raise ValueError(f"--include engine builds a TensorRT engine, which needs a CUDA GPU: --device "
                         f"{device or 'cpu'} is not one (pass --device 0 on a machine with an NVIDIA GPU)")
    model, x, meta, path = _prepared(resolve_weights(weights), torch_device, imgsz, batch_size, dynamic, nms, max_det)
    hw, head = tuple(x.shape[2:]), meta.pop("head")
    outputs = []
    calibration = _calibration(path, o.data, hw, o.calib_images, 1 if dynamic else batch_size) if int8 else []
    onnx_path = None
    scratch = None  # without --include onnx the intermediate graph goes to a temporary folder, so that an
    if {"onnx", "openvino", "engine"} & set(include):  # existing <weights>.onnx is never replaced or deleted
        if "onnx" not in include:
            scratch = Path(tempfile.mkdtemp(prefix="yolov5_spd_export_"))
        target = (scratch / path.name if scratch else path).with_suffix(".onnx")
        onnx_path = _onnx(model, x, target, meta, o.opset, dynamic, o.simplify)
    if "openvino" in include:
        outputs.append(_openvino(onnx_path, path, meta, half))
        if int8:
            outputs.append(_openvino_int8(outputs[-1], path, calibration, head, meta))
    if "engine" in include:
        outputs.append(_engine(onnx_path, path.with_suffix(".engine"), meta, half, hw, batch_size, dynamic))
    if "onnx" in include:
        if half:
            _to_fp16(onnx_path, head)
        outputs.append(onnx_path)
        if int8:
            outputs.append(_int8(onnx_path, calibration, head, meta))
    elif scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    if "torchscript" in include:
        if half and torch_device.type != "cuda":
            LOGGER.info("--half: TorchScript stays FP32 on the CPU (an FP16 trace needs --device 0)")
        elif half:
            model, x = model.half(), x.half()
        outputs.append(_torchscript(model, x, path.with_suffix(".torchscript"), meta))
    for out in outputs:
        size = sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else out.stat().st_size
        LOGGER.info(f"{out} ({size / 1e6:.1f} MB): validate with {face_command('val')} --weights {out}"
                    + (f" --data {o.data}" if o.data else ""))
    return outputs


def _prepared(path: Path, device: torch.device, imgsz, batch_size: int, dynamic: bool, nms: bool,
              max_det: int) -> tuple[torch.nn.Module, torch.Tensor, dict, Path]:
    """The inference form (BatchNorm folded, a Focus stem as its one conv) in the default memory format, an
    example input at the size rule's size, the metadata every file carries, and the path outputs are named by."""
    model = load_model(path, device, task="detection").for_inference(fold_space_to_depth=False)
    model = model.to(memory_format=torch.contiguous_format)
    for p in model.parameters():
        p.requires_grad_(False)
    size = check_image_size(imgsz, int(model.stride.max()), batch_size=batch_size)
    hw = (size, size) if isinstance(size, int) else tuple(size)
    x = torch.zeros(batch_size, 3, *hw, device=device)
    meta = {"names": model.names, "stride": model.stride.tolist(), "imgsz": size if isinstance(size, int) else
            list(size), "batch": batch_size, "dynamic": dynamic, "source": str(path), "head": len(model.model) - 1,
            "anchor_based": model.anchor_based}
    if nms:
        from utils.deploy.nms_graph import NmsGraph

        model = NmsGraph(model, max_det).eval()
        meta.update(nms=True, max_det=max_det)
        path = path.with_name(f"{path.stem}_nms{path.suffix}")
    return model, x, meta, path


def _check_options(o: ExportOptions) -> None:
    include, batch_size, opset, int8, half, calib_images = (o.include, o.batch_size, o.opset, o.int8, o.half,
                                                             o.calib_images)
    problems = [(not include, "--include: name at least one format"),
                (any(f not in FORMATS for f in include), f"--include {' '.join(include)}: formats are "
                                                         f"{', '.join(FORMATS)}"),
                (batch_size < 1, f"--batch-size must be >= 1, got {batch_size}"),
                (not 11 <= opset <= 21, f"--opset {opset}: supported opsets are 11 to 21 (default 17)"),
                (int8 and not {"onnx", "openvino"} & set(include),
                 "--int8 quantises the ONNX or OpenVINO export: add onnx or openvino to --include"),
                (int8 and half, "--int8 and --half: choose one"),
                (int8 and calib_images < 1, f"--calib-images must be >= 1, got {calib_images}")]
    for bad, message in problems:
        if bad:
            raise ConfigurationError(message)


def _check_nms_options(o: ExportOptions) -> None:
    nms, include, int8, half, max_det = o.nms, o.include, o.int8, o.half, o.max_det
    if not nms:
        return
    problems = [(not set(include) <= {"onnx", "openvino"}, f"--nms: ONNX and OpenVINO graphs only, not "
                                                          f"{', '.join(sorted(set(include) - {'onnx', 'openvino'}))}"),
                (int8 or half, "--nms exports FP32 graphs: drop --int8 / --half, or export without --nms"),
                (max_det < 1, f"--max-det must be >= 1, got {max_det}")]
    for bad, message in problems:
        if bad:
            raise ConfigurationError(message)


def _torchscript(model: torch.nn.Module, x: torch.Tensor, out: Path, meta: dict) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(model, x, strict=False)
    traced.save(str(out), _extra_files={"config.json": json.dumps(meta)})
    LOGGER.info(f"TorchScript: {out}")
    return out


def _onnx(model: torch.nn.Module, x: torch.Tensor, out: Path, meta: dict, opset: int, dynamic: bool,
          simplify: bool) -> Path:
    try:
        import onnx
    except ImportError:
        raise ValueError("ONNX export (also the first step of OpenVINO and TensorRT) needs the onnx package: "
                         + install_hint("export")) from None
    images_axes = {0: "batch", 2: "height", 3: "width"}
    if meta.get("nms"):
        inputs = (x, torch.tensor([0.45]), torch.tensor([0.25]))
        names, outputs = ["images", "iou_threshold", "score_threshold"], ["detections"]
        axes = {"detections": {0: "detections"}, **({"images": images_axes} if dynamic else {})}
    else:
        inputs, names, outputs = x, ["images"], ["output0"]
        axes = {"images": images_axes, "output0": {0: "batch", 1: "boxes"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, inputs, str(out), opset_version=opset, dynamo=False, input_names=names,
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    if simplify:
        proto = _simplified(proto)
    _set_metadata(proto, meta)
    onnx.save(proto, str(out))
    LOGGER.info(f"ONNX (opset {opset}{', dynamic batch/height/width' if dynamic else ''}): {out}")
    return out


def _to_fp16(path: Path, head: int) -> None:
    """Rewrite the FP32 ONNX file at ``path`` in FP16 (input included), the detection head's nodes and the
    output in FP32 (ONNX Runtime's converter inserts the casts)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel as OnnxGraph

    from utils.deploy.quantize import head_nodes

    kept = head_nodes(path, head)
    proto = convert_float_to_float16(onnx.load(str(path)), keep_io_types=["output0"], node_block_list=kept)
    graph = OnnxGraph(proto)
    graph.topological_sort()  # the converter appends the casts it adds (e.g. around Resize) at the end
    proto = graph.model
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    LOGGER.info(f"ONNX FP16 (input FP16; {len(kept)} detection-head nodes and the output in FP32): {path}")


def _simplified(proto):
    """onnxslim when installed, else onnx-simplifier, else the model as it is (said in one line)."""
    try:
        import onnxslim

        LOGGER.info("--simplify: onnxslim")
        return onnxslim.slim(proto)
    except ImportError:
        pass
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(proto)
        LOGGER.info(f"--simplify: onnx-simplifier {'done' if ok else 'check failed, kept the original'}")
        return simplified if ok else proto
    except ImportError:
        LOGGER.info("--simplify skipped: neither onnxslim nor onnxsim is installed (pip install onnxslim)")
        return proto


def _set_metadata(proto, meta: dict) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)


def _calibration(weights: Path, data: str | None, imgsz: tuple[int, int], count: int, batch: int) -> list:
    """The INT8 calibration batches (read once for every INT8 form): ``count`` training images of ``data``."""
    from utils.deploy.quantize import calibration_batches

    data = dataset_for(weights, data, purpose="calibrating INT8 on the training images of")
    return calibration_batches(data, imgsz, count, batch)


def _int8(fp32: Path, calibration: list, head: int, meta: dict) -> Path:
    import onnx

    from utils.deploy.quantize import quantize_int8

    out = quantize_int8(fp32, fp32.with_name(f"{fp32.stem}_int8.onnx"), calibration, head)
    proto = onnx.load(str(out))
    _set_metadata(proto, {**meta, "int8": True})
    onnx.save(proto, str(out))
    LOGGER.info(f"ONNX INT8 (QDQ, per-channel weights): {out}")
    return out


def _openvino(onnx_path: Path, weights: Path, meta: dict, half: bool) -> Path:
    try:
        import openvino as ov
    except ImportError:
        raise ValueError(f"--include openvino needs the openvino package: {install_hint('openvino')}") from None
    folder = weights.with_name(f"{weights.stem}_openvino_model")
    folder.mkdir(exist_ok=True)
    xml = folder / f"{weights.stem}.xml"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=half)
    (folder / OPENVINO_METADATA).write_text(json.dumps({**meta, "precision": "FP16" if half else "FP32"}))
    LOGGER.info(f"OpenVINO IR ({'FP16' if half else 'FP32'} weights): {folder}")
    return folder


def _engine(onnx_path: Path, out: Path, meta: dict, half: bool, imgsz: tuple[int, int], batch_size: int,
            dynamic: bool) -> Path:
    """A serialized TensorRT engine built from the ONNX graph, preceded by its metadata: 4 bytes of length
    (little-endian), then that many bytes of JSON. ``dynamic``: batch 1..batch_size and sizes 32..imgsz."""
    try:
        import tensorrt as trt
    except ImportError:
        raise ValueError("--include engine needs TensorRT: pip install tensorrt (a CUDA GPU and driver too)") \
            from None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"{onnx_path}: TensorRT could not parse it ({errors[:200]})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    if dynamic:
        profile = builder.create_optimization_profile()
        largest = (batch_size, 3, *imgsz)
        profile.set_shape(network.get_input(0).name, (1, 3, 32, 32), largest, largest)
        config.add_optimization_profile(profile)
    if half:
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ValueError(f"{onnx_path}: TensorRT failed to build an engine (its log above says why)")
    header = json.dumps({**meta, "precision": "FP16" if half else "FP32"}).encode()
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(len(header).to_bytes(ENGINE_HEADER, "little") + header + bytes(serialized))
    partial.replace(out)
    LOGGER.info(f"TensorRT engine ({'FP16' if half else 'FP32'}{', dynamic' if dynamic else ''}): {out}")
    return out


def _openvino_int8(fp32_folder: Path, weights: Path, calibration: list, head: int, meta: dict) -> Path:
    """The OpenVINO IR quantised to INT8 by NNCF (``<weights>_int8_openvino_model/``): calibrated on the same
    training images as the ONNX form, the detection head (``model.<head>``) left in float."""
    # NNCF imports torch.utils.cpp_extension, which warns on every CUDA-less machine that it found no CUDA
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise ValueError(f"--int8 with --include openvino needs NNCF: {install_hint('openvino')}") from None
    fp32_xml = next(fp32_folder.glob("*.xml"))
    nncf.set_log_level(logging.WARNING)  # not one INFO line per operation of the ignored head
    quantized = nncf.quantize(ov.Core().read_model(str(fp32_xml)), nncf.Dataset(calibration),
                              preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration),
                              ignored_scope=nncf.IgnoredScope(patterns=[rf"/model\.{head}/.*"], validate=False))
    folder = weights.with_name(f"{weights.stem}_int8_openvino_model")
    folder.mkdir(exist_ok=True)
    ov.save_model(quantized, str(folder / fp32_xml.name))
    (folder / OPENVINO_METADATA).write_text(json.dumps({**meta, "precision": "INT8", "int8": True}))
    LOGGER.info(f"OpenVINO INT8 (NNCF, {sum(len(b) for b in calibration)} calibration images, model.{head} in float): "
                f"{folder}")
    return folder
