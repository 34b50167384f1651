"""One model object for Python users, as ultralytics' ``YOLO`` is used:

    from utils.detection.model_api import YOLO          # installed: from yolov5_spd import YOLO
    model = YOLO("space_depth_n.yaml")                  # a config (untrained), or weights: ours, yolov5n.pt,
    model = YOLO("yolo11n.pt")                          # the SPD-Conv authors' *_best.pt, ultralytics' yolo11n.pt
    model.train(data="smallobj.yaml", epochs=3)         # afterwards the object holds the run's best.pt
    metrics = model.val()                               # the dataset it was trained on, or data=...
    for r in model.predict("clip.mp4", stream=True):    # Detections: r.boxes.xyxy, r.plot(), r.save() ...
        ...
    for r in model.track("clip.mp4", tracker="bytetrack", stream=True):
        r.boxes.id                                      # persistent track ids
    model.export(format="onnx")                         # the written file
    model.info(); model.names; model.fuse(); model.to("cpu")

Options are the command line's names (``conf_thres``, ``batch_size``, ``noplots`` ...); ultralytics' names for the
same settings are accepted too (``conf``, ``iou``, ``batch``, ``plots``, ``show``, ``save``, ``format``,
``line_width``, ``show_labels``, ``show_conf``). An unknown name is one line naming the nearest option.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from utils.checkpoints.files import resolve_weights
from utils.detection.prediction import Detector, PredictionOptions, collected, run_detection
from utils.detection.results import Detections
from utils.distributed import select_device
from utils.logging import LOGGER
from utils.options import ConfigurationError, our_names
from utils.precision import inference_half

CONFIG_SUFFIXES = (".yaml", ".yml")
WRITES = ("save_txt", "save_conf", "save_crop", "save_json", "view_img")  # prediction outputs that need files


class YOLO:
    """A detector built from a config or loaded from weights, with train / val / predict / track / export."""

    def __init__(self, model: str | Path = "space_depth_n.yaml", device: str = "") -> None:
        self.device = select_device(device)
        self._inference: torch.nn.Module | None = None
        self._trackers: dict = {}
        self._load(model)

    def _load(self, model: str | Path) -> None:
        from models.yolo import DetectionModel
        from utils.deploy.backends import load_any

        if Path(str(model)).suffix.lower() in CONFIG_SUFFIXES:
            self.cfg, self.weights = str(model), None
            self.model = DetectionModel(self.cfg).to(self.device)
        else:
            self.cfg, self.weights = None, resolve_weights(model)
            self.model = load_any(self.weights, self.device)
        self._inference = None

    def __repr__(self) -> str:
        return f"YOLO({self.weights or self.cfg!s}, {len(self.names)} classes, {self.device})"

    # ------------------------------------------------------------------------------------------------ facts
    @property
    def names(self) -> list[str]:
        """The class names."""
        return list(self.model.names)

    @property
    def stride(self) -> int:
        """The largest stride of the model."""
        return int(self.model.stride.max())

    @property
    def is_pytorch(self) -> bool:
        """Whether the model is a PyTorch module (a config or a .pt), not an export."""
        return isinstance(self.model, torch.nn.Module)

    def info(self, imgsz: int = 640, verbose: bool = True) -> str:
        """The layer table with parameters and GFLOPs at ``imgsz`` (logged unless ``verbose`` is False)."""
        if not self.is_pytorch:
            text = f"{self.weights}: an export ({type(self.model).__name__}); no layer table"
        else:
            text = self.model.info(imgsz)
        if verbose:
            LOGGER.info(text)
        return text

    def fuse(self) -> YOLO:
        """Fold BatchNorm into the convolutions (inference only; train a fresh object afterwards)."""
        if self.is_pytorch:
            self.model.fuse()
            self._inference = None
        return self

    def to(self, device: str | torch.device) -> YOLO:
        """Move the model to ``device`` ("cpu", "0", a torch.device)."""
        self.device = device if isinstance(device, torch.device) else select_device(device)
        if self.is_pytorch:
            self.model.to(self.device)
        else:
            self._load(self.weights)
        self._inference = None
        return self

    def _weights_for(self, job: str) -> str:
        if self.weights is None:
            raise ConfigurationError(f"YOLO.{job}: {self.cfg} is an untrained config; train it first "
                                     f"(model.train(...)) or load weights (YOLO('best.pt'))")
        return str(self.weights)

    # ------------------------------------------------------------------------------------------------ jobs
    def train(self, callbacks: list | tuple = (), **options: Any) -> dict:
        """Train with train.py's options (keywords); starts from these weights (a .pt) or this config. The
        object then holds the run's best.pt. Returns the final metrics and ``save_dir``."""
        from utils.detection.task import train as train_detector

        given = our_names(options, "noplots")
        if not {"weights", "cfg", "resume"} & given.keys():
            if self.cfg:
                given["cfg"] = self.cfg
            elif Path(self._weights_for("train")).suffix == ".pt":
                given["weights"] = str(self.weights)
            else:
                raise ConfigurationError(f"YOLO.train: {self.weights} is an export; train from a .pt or a config")
        given.setdefault("device", self._device_text())
        result = train_detector(given, callbacks=callbacks)
        folder = Path(result["save_dir"]) / "weights"
        trained = folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt"
        self._load(trained)
        return result

    def val(self, **options: Any) -> dict:
        """val.py with its options (keywords) on these weights; returns the metrics."""
        from utils.detection.validation import run_validation

        given = our_names(options, "plots")
        given.setdefault("weights", self._weights_for("val"))
        given.setdefault("device", self._device_text())
        return run_validation(**given)

    def _device_text(self) -> str:
        return "cpu" if self.device.type == "cpu" else str(self.device.index or 0)

    def predict(self, source: Any = None, stream: bool = False, save: bool = False,
                **options: Any) -> list[Detections] | Iterator[Detections]:
        """Detections of every image or frame of ``source`` (detect.py's sources; None: the sample images);
        detect.py's options (keywords). Files are written only when asked: ``save`` (annotated images and
        videos), ``save_txt``, ``save_crop``, ``save_json``, ``view_img``."""
        given = our_names(options, "plots")
        if source is not None:
            given["source"] = source
        if save or any(given.get(k) for k in WRITES):
            given.update(weights=self._weights_for("predict(save=True)"), nosave=not save, stream=stream)
            given.setdefault("device", self._device_text())
            return run_detection(**given)
        detector, o = self._detector(given)
        tiles = o.slicing()
        slicing = dict(slice_hw=tiles.tile_hw, overlap=tiles.overlap, merge=tiles.merge) if tiles else {}
        return detector.predict(o.source, stream=stream, vid_stride=o.vid_stride, **slicing)

    __call__ = predict

    def _detector(self, given: dict[str, Any]) -> tuple[Detector, PredictionOptions]:
        writes_only = {"nosave", "project", "name", "exist_ok", "line_thickness", "hide_labels", "hide_conf"}
        unused = writes_only & given.keys()
        if unused:
            raise ConfigurationError(f"YOLO.predict: {', '.join(sorted(unused))} only shape written files; "
                                     f"add save=True")
        o = PredictionOptions.from_dict({"weights": str(self.weights or self.cfg), **given}, "YOLO.predict")
        if self._inference is None:
            if self.is_pytorch:
                self._inference = copy.deepcopy(self.model).for_inference()
            else:
                self._inference = self.model.for_inference()
        half, line = inference_half(self._inference, self.device, o.half)
        if line:
            LOGGER.info(line)
        detector = Detector(self.weights or self.cfg, self.device, o.imgsz, o.nms(), half, model=self._inference,
                            augment=o.augment)
        if o.max_pixels:
            detector.max_pixels = o.max_pixels
        return detector, o

    def track(self, source: Any = None, tracker: str = "bytetrack", persist: bool = False, stream: bool = False,
              **options: Any) -> list[Detections] | Iterator[Detections]:
        """Detections of every frame with persistent track ids (``boxes.id``): ``tracker`` bytetrack or botsort
        (or a tracker YAML); ``persist`` keeps the tracks of the previous call (frames fed one call at a time)."""
        from utils.detection.tracking import make_tracker

        key = str(tracker)
        if not persist or key not in self._trackers:
            self._trackers[key] = make_tracker(tracker)
        state = self._trackers[key]
        frames = self.predict(source, stream=True, **options)
        tracked = (state.update_detections(det) for det in frames)
        return tracked if stream else collected(tracked)

    def export(self, format: str | list[str] = "onnx", **options: Any) -> Path | list[Path]:  # noqa: A002
        """export.py with its options (keywords) on these weights; ``format`` one or several of its
        ``include`` formats. Returns the written file (a list for several)."""
        from utils.deploy.exporters import export

        given = our_names(options, "plots")
        given.setdefault("include", [format] if isinstance(format, str) else list(format))
        given.setdefault("weights", self._weights_for("export"))
        if Path(given["weights"]).suffix != ".pt":
            raise ConfigurationError(f"YOLO.export: {given['weights']} is already an export; export from a .pt")
        written = export(**given)
        return written[0] if len(written) == 1 else written
