"""Exported models behind the interface val.py and detect.py use: ONNX Runtime, TorchScript, OpenVINO, TensorRT.

A backend is called with a float (B, 3, H, W) tensor and returns the decoded (B, N, 5 + nc) predictions, like
``DetectionModel`` in eval mode; it carries ``names``, ``stride`` and ``nc``, and ``fixed_shape`` (h, w) when
the file only takes one input size (a static ONNX export): callers letterbox every image to it. A static
batch size is served by running full batches, the last one padded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from utils.wording import install_hint

METADATA_KEY = "yolov5_spd"
OPENVINO_METADATA = "yolov5_spd.json"  # beside the .xml/.bin of an OpenVINO export
ENGINE_HEADER = 4  # an .engine file starts with the length of its JSON metadata (little-endian), then the JSON


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else exc.__class__.__name__


def _check_metadata(meta: object, source: str | Path) -> None:
    """The metadata an export carries: class names (strings), strides (positive numbers), an NMS flag and its
    max_det; anything else is one line naming the file (a tampered or foreign file)."""
    problems = []
    if not isinstance(meta, dict):
        problems.append("the metadata is not a mapping")
    else:
        names, stride = meta.get("names"), meta.get("stride")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            problems.append(f"'names' must be a non-empty list of class names, got {type(names).__name__}")
        if not isinstance(stride, list) or not stride or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in stride):
            problems.append(f"'stride' must be a non-empty list of positive numbers, got {stride!r}")
        if meta.get("nms") and (not isinstance(meta.get("max_det"), int) or meta["max_det"] < 1):
            problems.append("an NMS export needs a 'max_det' >= 1")
    if problems:
        raise ValueError(f"{source}: not usable export metadata ({'; '.join(problems)}): export it again")


class OnnxModel:
    """An exported .onnx file run by ONNX Runtime (an optional dependency: ``pip install .[export]``)."""

    def __init__(self, path: str | Path, device: torch.device = torch.device("cpu")) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError(f"{path}: running ONNX models needs onnxruntime ({install_hint('export')})") from None
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
            meta = json.loads(self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}"))
        except Exception as exc:  # ONNX Runtime raises its own exception types for malformed files
            raise ValueError(f"{path}: not a readable ONNX model ({_first_line(exc)})") from None
        if not meta:
            raise ValueError(f"{path}: not exported by this project (no '{METADATA_KEY}' metadata)")
        self._apply(meta, path)
        self._check_outputs(path)
        self.path = Path(path)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.fp16 = first.type == "tensor(float16)"
        self.device = device
        dims = list(first.shape) if len(first.shape) == 4 else [None] * 4
        self.fixed_batch = dims[0] if isinstance(dims[0], int) else None
        self.fixed_shape = (dims[2], dims[3]) if all(isinstance(d, int) for d in dims[2:]) else None

    def _apply(self, meta: dict, source: str | Path = "export") -> None:
        _check_metadata(meta, source)
        self.names = list(meta["names"])
        self.nc = len(self.names)
        self.stride = torch.tensor(meta["stride"], dtype=torch.float32)
        self.anchor_based = bool(meta.get("anchor_based", True))  # which head family's conventions apply
        self.nms_inside = bool(meta.get("nms"))  # export.py --nms: call detect(), not the model
        self.max_det = int(meta.get("max_det", 0))

    def _check_outputs(self, path: str | Path) -> None:
        """The graph's outputs must be what the metadata says: 5 + nc columns, or the --nms graph's rows."""
        outputs = self.session.get_outputs()
        width = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        nms_graph = len(self.session.get_inputs()) == 3  # images, iou_threshold, score_threshold
        if self.nms_inside != nms_graph:
            raise ValueError(f"{path}: its metadata says {'an' if self.nms_inside else 'no'} NMS graph, but the graph "
                             f"{'has' if nms_graph else 'has no'} NMS inputs: tampered metadata, export it again")
        if not self.nms_inside and isinstance(width, int) and width != 5 + self.nc:
            raise ValueError(f"{path}: its metadata names {self.nc} classes but the network outputs {width - 5}: "
                             f"tampered metadata, export it again")

    def detect(self, x: torch.Tensor, conf_thres: float, iou_thres: float, max_det: int,
               classes: list[int] | None = None) -> list[torch.Tensor]:
        """An --nms export: final (n, 6) detections per image (x1 y1 x2 y2 score class, input pixels)."""
        from utils.deploy.nms_graph import split_detections

        if not self.nms_inside:
            raise ValueError(f"{self.path}: exported without --nms; run NMS on its outputs")
        if self.fixed_shape is not None and tuple(x.shape[2:]) != self.fixed_shape:
            raise ValueError(f"{self.path}: exported for {self.fixed_shape[0]}x{self.fixed_shape[1]} inputs only, "
                             f"got {x.shape[2]}x{x.shape[3]} (export with --dynamic for other sizes)")
        if max_det > self.max_det and not getattr(self, "_noted", False):
            from utils.logging import LOGGER

            LOGGER.info(f"{self.path}: its NMS keeps at most {self.max_det} boxes per class and image (export "
                        f"--max-det); up to {max_det} per image are returned")
            self._noted = True
        thresholds = (np.array([iou_thres], np.float32), np.array([conf_thres], np.float32))
        step = self.fixed_batch or len(x)
        out = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step].detach().float().cpu()
            n = len(chunk)
            if n < step:
                chunk = torch.cat([chunk, chunk.new_zeros((step - n, *chunk.shape[1:]))])
            rows = torch.from_numpy(np.asarray(self._run_nms(np.ascontiguousarray(chunk.numpy()), *thresholds)))
            out += split_detections(rows.float(), n, max_det, classes)
        return out

    def _run_nms(self, chunk: np.ndarray, iou: np.ndarray, conf: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: chunk, "iou_threshold": iou, "score_threshold": conf})[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.nms_inside:
            raise ValueError(f"{self.path}: an export with NMS inside returns final boxes: call detect()")
        if self.fixed_shape is not None and tuple(x.shape[2:]) != self.fixed_shape:
            raise ValueError(f"{self.path}: exported for {self.fixed_shape[0]}x{self.fixed_shape[1]} inputs only, "
                             f"got {x.shape[2]}x{x.shape[3]} (export with --dynamic for other sizes)")
        x = x.detach()
        step = self.fixed_batch or len(x)
        outputs = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            if len(chunk) < step:  # a static batch size: pad the last batch, then drop the padding's output
                chunk = torch.cat([chunk, chunk.new_zeros((step - len(chunk), *chunk.shape[1:]))])
            outputs.append(self._forward(chunk)[:len(x) - start])
        return torch.cat(outputs).float().to(x.device)

    def _forward(self, chunk: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(chunk.cpu().numpy(), dtype="float16" if self.fp16 else "float32")
        return torch.from_numpy(self._run(array))

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: chunk})[0]

    def eval(self) -> OnnxModel:
        """Nothing to switch: an export is always in inference mode."""
        return self

    def fuse(self) -> OnnxModel:
        """Nothing to fuse: the export is already fused."""
        return self

    def for_inference(self) -> OnnxModel:
        """The export itself (already fused and in inference mode)."""
        return self

    def parameters(self):
        """A placeholder tensor on the device, for code that asks a model for its device."""
        yield torch.zeros(0, device=self.device)


class TorchScriptModel(OnnxModel):
    """An exported .torchscript file (``torch.jit.load``; no Python code from the file is run)."""

    def __init__(self, path: str | Path, device: torch.device = torch.device("cpu")) -> None:
        extra = {"config.json": ""}
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file")
        try:
            self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except Exception as exc:  # a garbage or foreign file: torch raises RuntimeError or worse
            raise ValueError(f"{path}: not a readable TorchScript model ({_first_line(exc)})") from None
        if not extra["config.json"]:
            raise ValueError(f"{path}: not exported by this project (no config.json inside)")
        self._apply(json.loads(extra["config.json"]), path)
        self.fp16 = next(self.module.parameters()).dtype == torch.float16
        self.device = device
        self.path, self.fixed_batch, self.fixed_shape = Path(path), None, None  # a trace runs at any size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x.half() if self.fp16 else x.float())
        return (out[0] if isinstance(out, (tuple, list)) else out).float()


class OpenVinoModel(OnnxModel):
    """An OpenVINO IR export (``<name>_openvino_model/`` or its .xml), compiled for the CPU."""

    def __init__(self, path: str | Path, device: torch.device = torch.device("cpu")) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ImportError(f"{path}: running OpenVINO models needs openvino ({install_hint('openvino')})") from None
        path = Path(path)
        xml = next(iter(sorted(path.glob("*.xml"))), None) if path.is_dir() else path
        meta_file = (path if path.is_dir() else path.parent) / OPENVINO_METADATA
        if xml is None or not xml.is_file():
            raise ValueError(f"{path}: no OpenVINO .xml model here")
        if not meta_file.is_file():
            raise ValueError(f"{path}: not exported by this project (no {OPENVINO_METADATA} beside the model)")
        try:
            # f32 compute: OpenVINO would otherwise pick bf16 on CPUs that have it (0.03 off in probabilities)
            self.compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        except Exception as exc:  # OpenVINO raises its own types for malformed files
            raise ValueError(f"{xml}: not a readable OpenVINO model ({_first_line(exc)})") from None
        self._apply(json.loads(meta_file.read_text()), path)
        self.path, self.device, self.fp16 = path, device, False
        shape = self.compiled.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static else [None] * 4
        self.fixed_batch = dims[0]
        self.fixed_shape = (dims[2], dims[3]) if dims[2] and dims[3] else None

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        return self.compiled(chunk)[0]

    def _run_nms(self, chunk: np.ndarray, iou: np.ndarray, conf: np.ndarray) -> np.ndarray:
        return self.compiled([chunk, iou, conf])[0]


class TensorRTModel(OnnxModel):
    """A TensorRT ``.engine`` written by export.py (metadata header, then the serialized engine); CUDA only."""

    def __init__(self, path: str | Path, device: torch.device = torch.device("cpu")) -> None:
        if device.type != "cuda":
            raise ValueError(f"{path}: a TensorRT engine runs on a CUDA GPU only (pass --device 0)")
        try:
            import tensorrt as trt
        except ImportError:
            raise ImportError(f"{path}: running TensorRT engines needs tensorrt (pip install tensorrt)") from None
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file")
        blob = Path(path).read_bytes()
        length = int.from_bytes(blob[:ENGINE_HEADER], "little")
        try:
            meta = json.loads(blob[ENGINE_HEADER:ENGINE_HEADER + length])
            names_ok = isinstance(meta, dict) and isinstance(meta.get("names"), (list, dict))
        except (UnicodeDecodeError, ValueError):
            names_ok = False
        if not names_ok:
            raise ValueError(f"{path}: not an engine exported by this project (no metadata header)")
        logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(device):
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(blob[ENGINE_HEADER + length:])
            if self.engine is None:
                raise ValueError(f"{path}: TensorRT could not load the engine (built by another TensorRT version "
                                 f"or for another GPU?)")
            self.context = self.engine.create_execution_context()
        self._apply(meta, path)
        io = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in io if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in io if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self._torch_dtype = {n: torch.float16 if self.engine.get_tensor_dtype(n) == trt.DataType.HALF
                             else torch.float32 for n in (self.input_name, self.output_name)}
        self.fp16 = self._torch_dtype[self.input_name] == torch.float16
        dims = tuple(self.engine.get_tensor_shape(self.input_name))  # -1 where dynamic
        self.path, self.device = Path(path), device
        self.fixed_batch = dims[0] if dims[0] > 0 else None
        self.fixed_shape = (dims[2], dims[3]) if dims[2] > 0 and dims[3] > 0 else None

    def _forward(self, chunk: torch.Tensor) -> torch.Tensor:
        chunk = chunk.to(self.device, self._torch_dtype[self.input_name]).contiguous()
        self.context.set_input_shape(self.input_name, tuple(chunk.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)),
                          dtype=self._torch_dtype[self.output_name], device=self.device)
        self.context.set_tensor_address(self.input_name, chunk.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"{self.path}: TensorRT inference failed")
        stream.synchronize()
        return out


def load_any(weights: str | Path | list, device: torch.device):
    """A .pt checkpoint (ours or YOLOv5-family), an .onnx, .torchscript or TensorRT .engine file, or an
    OpenVINO export (its folder or .xml), ready for inference; a list of several: their
    :class:`models.ensemble.Ensemble`."""
    if isinstance(weights, (list, tuple)):
        if len(weights) == 1:
            return load_any(weights[0], device)
        from models.ensemble import Ensemble

        return Ensemble([load_any(w, device) for w in weights], [str(w) for w in weights])
    suffix = Path(weights).suffix.lower()
    if suffix == ".xml" or (Path(weights).is_dir() and Path(weights).name.endswith("_openvino_model")):
        return OpenVinoModel(weights, device)
    if suffix == ".onnx":
        return OnnxModel(weights, device)
    if suffix == ".torchscript":
        return TorchScriptModel(weights, device)
    if suffix == ".engine":
        return TensorRTModel(weights, device)
    from models.loading import load_model

    return load_model(weights, device, task="detection")
