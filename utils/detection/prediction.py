"""Prediction: the :class:`Detector` (the Python inference API behind detect.py, the hub and val.py --slice) and
detect.py's job as a function (:func:`run_detection`): detect on any source and write what was asked.

    from utils.detection.prediction import Detector
    detector = Detector("weights/best.pt")                     # or a list of weights: an ensemble
    for det in detector(["bus.jpg", bgr_array, pil_image]):    # a list of Detections
        print(det.names_of(), det.scores, det.xyxy)            # boxes in original pixels
    for det in detector("clip.mp4", stream=True):             # one frame at a time, never the whole video
        cv2.imshow("x", det.plot())

Sources are anything :func:`utils.data.sources.iterate_source` reads: paths, folders, globs, videos, camera
indices, stream and image URLs, ``.streams`` files, numpy arrays, PIL images, tensors and lists of them. Numpy
arrays are **BGR** (OpenCV's order) unless ``numpy_order="rgb"`` (the hub's default, as yolov5's hub).

detect.py's outputs in ``runs/detect/exp*``: ``<image name>`` and ``<video or stream stem>.mp4`` (annotated), with
``--save-txt`` ``labels/<stem>.txt`` (``<stem>_<frame>.txt`` for videos and streams, 1-based frame numbers as
yolov5), with ``--save-crop`` ``crops/<class>/<stem>[_<frame>]_<k>.jpg`` and with ``--save-json``
``predictions.json``: the records of :mod:`utils.detection.results`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from utils.boxes import (
    NmsSettings,
    check_max_det,
    class_aware_nms,
    merge_by_ios,
    non_max_suppression,
    unletterbox_boxes,
    yolo_label_rows,
)
from utils.checkpoints.files import newest_run_checkpoint, resolve_weights
from utils.checkpoints.format import CheckpointError
from utils.data.augmentations import box_mapping, letterbox
from utils.data.images import DEFAULT_MAX_PIXELS
from utils.data.sources import Frame, check_local_source, iterate_source, output_stem
from utils.data.tiles import Slicing, tile_origins
from utils.deploy.backends import load_any
from utils.detection.display import display_available
from utils.detection.head_families import family_of
from utils.detection.results import Detections
from utils.distributed import select_device
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path
from utils.options import ConfigurationError, JobOptions, one_or_several
from utils.paths import PACKAGE_ROOT
from utils.precision import half_inputs, inference_autocast, inference_half
from utils.wording import face_command

MERGES = ("nms", "nmm")


def _memory_of(device: torch.device) -> str | None:
    return str(device) if device.type == "cuda" else None


def collected(frames: Iterator[Detections]) -> list[Detections]:
    """Every frame's Detections in a list; video and stream frames without their images (a long video's would
    fill the memory), image files with theirs."""
    out = []
    for det in frames:
        if det.frame is not None:
            det.image = None
        out.append(det)
    return out


class Detector:
    """Load weights once (one file, or several: an ensemble whose outputs are merged before NMS); detect on any
    source. ``imgsz`` is a size or (h, w), rounded up to the largest stride; ``augment`` is test-time
    augmentation (3 scales and a flip merged before NMS, PyTorch weights only)."""

    def __init__(self, weights: str | Path | list, device: str | torch.device = "", imgsz: int | tuple[int, int] = 640,
                 nms: NmsSettings | None = None, half: bool = False, model: torch.nn.Module | None = None,
                 augment: bool = False, numpy_order: str = "bgr") -> None:
        """``nms`` None: confidence 0.25, the model family's IoU and box count (YOLOv5 0.45 / 1000 as yolov5's
        detect.py, YOLOv8 / YOLO11 0.7 / 300 as ultralytics), best class per box. ``model``: the inference model
        of ``weights`` already loaded on ``device`` (val.py --slice), so it is not read twice; ``half`` is then
        taken as already decided."""
        nms = nms or NmsSettings.prediction()
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.weights = weights
        if model is None:
            self.model = load_any(weights, self.device).for_inference()
            self.half, line = inference_half(self.model, self.device, half)
            if line:
                LOGGER.info(line)
        else:
            self.model, self.half = model, half
        self.family = family_of(self.model)
        self.names = list(self.model.names)
        self.stride = int(self.model.stride.max())
        fixed = getattr(self.model, "fixed_shape", None)
        self.fixed = fixed is not None
        if fixed is not None:
            self.imgsz = (int(fixed[0]), int(fixed[1]))
        else:
            size = check_image_size(imgsz, self.stride, device=_memory_of(self.device))
            self.imgsz = (size, size) if isinstance(size, int) else size
        self.conf_thres = nms.conf_thres
        self.iou_thres = self.family.predict_iou if nms.iou_thres is None else nms.iou_thres
        self.max_det = check_max_det(self.family.predict_max_det if nms.max_det is None else nms.max_det)
        self.classes, self.agnostic = self._checked_classes(nms.classes), nms.agnostic
        self.merge_ios = nms.merge_ios  # the intersection-over-smaller of --merge nmm
        self.augment = augment
        self.numpy_order = numpy_order
        self.max_pixels = DEFAULT_MAX_PIXELS  # image files and URLs with more pixels are refused (--max-pixels)

    def _checked_classes(self, classes: list[int] | None) -> list[int] | None:
        if classes is None:
            return None
        outside = [c for c in classes if not 0 <= int(c) < len(self.names)]
        if outside:
            shown = ", ".join(self.names[:3]) + (", ..." if len(self.names) > 3 else "")
            raise ValueError(f"--classes {' '.join(map(str, classes))}: {self.weights} has classes "
                             f"0..{len(self.names) - 1} ({shown}); {outside} not among them")
        return [int(c) for c in classes]

    @property
    def augment(self) -> bool:
        """Whether test-time augmentation is on (PyTorch weights only)."""
        return self._augment

    @augment.setter
    def augment(self, value: bool) -> None:
        if value and not hasattr(self.model, "forward_augmented"):
            raise ValueError(f"{self.weights}: test-time augmentation (--augment) needs PyTorch weights (.pt), "
                             f"not an export")
        self._augment = bool(value)

    # ------------------------------------------------------------------------------------------------ core
    def _letterboxed(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list]:
        """A batch: minimal padding when every image gives the same shape (one image, a stream batch of one
        camera), else every image letterboxed to the full size."""
        boxed = [letterbox(im, self.imgsz, scale_up=True, stride=self.stride, minimal=not self.fixed)
                 for im in images]
        if len({b[0].shape for b in boxed}) > 1:
            boxed = [letterbox(im, self.imgsz, scale_up=True, stride=self.stride) for im in images]
        array = np.stack([b[0] for b in boxed])[..., ::-1].transpose(0, 3, 1, 2)  # BGR -> RGB, BHWC -> BCHW
        x = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        x = (x.half() if half_inputs(self.device, self.half) else x.float()).div_(255)
        return x, [(b[1], b[2]) for b in boxed]

    @torch.no_grad()
    def _run_batch(self, images: list[np.ndarray]) -> list[torch.Tensor]:
        """BGR images -> (n, 6) detections each, in its pixels (before any cross-tile merge)."""
        x, geometry = self._letterboxed(images)
        if getattr(self.model, "nms_inside", False):  # export.py --nms: final boxes (every class above conf)
            if self.agnostic:
                raise ValueError(f"{self.weights}: class-agnostic NMS needs the plain export (this one has NMS "
                                 f"inside)")
            dets = self.model.detect(x, self.conf_thres, self.iou_thres, self.max_det, self.classes)
        else:
            with inference_autocast(self.device, self.half):
                predictions = self.model.forward_augmented(x) if self._augment else self.model(x)
            dets = non_max_suppression(predictions.float(), self.conf_thres, self.iou_thres, multi_label=False,
                                       max_det=self.max_det, classes=self.classes, agnostic=self.agnostic)
        out = []
        for det, image, (gain, pad) in zip(dets, images, geometry):
            det = det.cpu()
            gain, pad = box_mapping(image.shape[:2], gain, pad, self.family.preprocessing)
            det[:, :4] = unletterbox_boxes(det[:, :4], gain, pad, image.shape[:2])
            out.append(det)
        return out

    def _run(self, image: np.ndarray) -> torch.Tensor:
        return self._run_batch([image])[0]

    def predict_tensors(self, image: np.ndarray, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
                        merge: str = "nms") -> tuple[torch.Tensor, torch.Tensor]:
        """(the full image's (n, 6) detections, the final ones: with tiles merged when ``slice_hw``)."""
        if merge not in MERGES:
            raise ValueError(f"--merge {merge}: nms or nmm")
        if slice_hw is not None and slice_hw != ():
            Slicing(tuple(slice_hw), overlap, merge)  # the sizes and the overlap checked once, as --slice
        full = self._run(image)
        if not slice_hw:
            return full, full
        h, w = image.shape[:2]
        th, tw = min(slice_hw[0], h), min(slice_hw[1], w)
        parts = [full]
        for y in tile_origins(h, th, overlap):
            for x in tile_origins(w, tw, overlap):
                tile_det = self._run(np.ascontiguousarray(image[y:y + th, x:x + tw]))
                tile_det[:, [0, 2]] += x
                tile_det[:, [1, 3]] += y
                parts.append(tile_det)
        det = torch.cat(parts, 0)
        groups = torch.zeros_like(det[:, 5]) if self.agnostic else det[:, 5]
        if merge == "nmm":
            kept, boxes = merge_by_ios(det[:, :4], det[:, 4], groups, self.merge_ios)
            det = det[kept]
            det[:, :4] = boxes
            return full, det[:self.max_det]
        return full, det[class_aware_nms(det[:, :4], det[:, 4], groups, self.iou_thres)[:self.max_det]]

    def _detections(self, det: torch.Tensor, frame: Frame, keep_image: bool) -> Detections:
        return Detections(det[:, :4].numpy(), det[:, 4].numpy(), det[:, 5].numpy().astype(int), self.names,
                          frame.image.shape[:2], frame.source, frame.index, frame.image if keep_image else None)

    def predict_one(self, image: np.ndarray, source: str = "", slice_hw: tuple[int, int] | None = None,
                    overlap: float = 0.2, merge: str = "nms") -> Detections:
        """Detect on one BGR image; with ``slice_hw`` also on overlapping H x W tiles, merged with the full
        image's detections by class-aware NMS (``merge="nms"``) or by non-maximum merging with
        intersection-over-smaller matching (``merge="nmm"``, :func:`utils.boxes.merge_by_ios`)."""
        det = self.predict_tensors(image, slice_hw, overlap, merge)[1]
        return self._detections(det, Frame(image, source, "image"), keep_image=True)

    # ------------------------------------------------------------------------------------------------ sources
    def stream(self, source: Any, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
               merge: str = "nms", vid_stride: int = 1, on_skip=None, timeout: float = 10.0,
               batches: bool = False) -> Iterator[Detections] | Iterator[list[Detections]]:
        """Detections frame by frame (each holding its image), read lazily from ``source``; with ``batches``
        one list per batch of the source (a ``.streams`` file: one frame of every stream)."""
        for frames in iterate_source(source, self.numpy_order, vid_stride, timeout, on_skip, self.max_pixels):
            if slice_hw or len(frames) == 1:
                dets = [self.predict_tensors(f.image, slice_hw, overlap, merge)[1] for f in frames]
            else:
                dets = self._run_batch([f.image for f in frames])
            results = [self._detections(d, f, keep_image=True) for d, f in zip(dets, frames)]
            if batches:
                yield results
            else:
                yield from results

    def predict(self, source: Any, slice_hw: tuple[int, int] | None = None, overlap: float = 0.2,
                merge: str = "nms", stream: bool = False, vid_stride: int = 1,
                timeout: float = 10.0) -> list[Detections] | Iterator[Detections]:
        """One Detections per image or frame. A list (video and stream frames in it without their images, so a
        long video does not fill the memory), or with ``stream=True`` a generator of complete ones."""
        frames = self.stream(source, slice_hw, overlap, merge, vid_stride, timeout=timeout)
        return frames if stream else collected(frames)

    def __call__(self, source: Any, **kwargs) -> list[Detections] | Iterator[Detections]:
        """``detector(source)`` is :meth:`predict`."""
        return self.predict(source, **kwargs)


@dataclass
class OutputOptions:
    """What detect.py writes and shows (the model's thresholds live in the Detector)."""

    save_dir: Path
    nosave: bool = False
    save_txt: bool = False
    save_conf: bool = False
    save_crop: bool = False
    save_json: bool = False
    view_img: bool = False
    style: dict = field(default_factory=dict)


def newest_trained_weights(project: Path = Path("runs") / "train") -> Path | None:
    """The newest best.pt under runs/train of the current folder, where train.py writes by default."""
    return newest_run_checkpoint(project, "best.pt")


def weights_or_newest(weights: str | list[str]) -> Path | list[Path]:
    """The named weights (one or several: an ensemble), or the newest trained model when none is named."""
    if isinstance(weights, (list, tuple)):
        if len(weights) > 1:
            return [resolve_weights(w) for w in weights]
        weights = weights[0] if weights else ""
    if not weights:
        newest = newest_trained_weights()
        if newest is None:
            raise CheckpointError("no --weights given and no trained model in runs/train/*/weights/best.pt: "
                                  f"train one with '{face_command('train')}' or pass --weights")
        weights = str(newest)
        LOGGER.info(f"--weights not given: the newest trained model, {weights}")
    return resolve_weights(weights)


class OutputWriter:
    """Writes one run's files as the frames come; counts what it saw."""

    def __init__(self, options: OutputOptions) -> None:
        self.options = options
        self.records: list[dict] = []
        self.videos: dict[str, cv2.VideoWriter] = {}
        self.images = self.frames = 0
        self.show = options.view_img and display_available()
        if options.view_img and not self.show:
            LOGGER.info("--view-img: no display here (no DISPLAY, or OpenCV without its GUI); writing files only")

    def _stem(self, det: Detections) -> str:
        return output_stem(det.source) if det.source else "image"

    def write(self, det: Detections, fps: float = 30.0) -> None:
        """Write one frame's outputs (annotated image or video frame, labels, crops, records)."""
        o, stem = self.options, self._stem(det)
        in_video = det.frame is not None
        self.frames += in_video
        self.images += not in_video
        label_stem = f"{stem}_{det.frame + 1}" if in_video else stem
        annotated = det.plot(**o.style) if (not o.nosave or self.show) else None
        if not o.nosave:
            if in_video:
                self._video(stem, det, fps).write(annotated)
            else:
                cv2.imwrite(str(o.save_dir / (det.file if det.file and Path(det.file).suffix else f"{stem}.jpg")),
                            annotated)
        if o.save_txt:
            path = o.save_dir / "labels" / f"{label_stem}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = yolo_label_rows(det.classes, det.xyxy, det.image_shape, det.scores if o.save_conf else None)
            path.write_text("\n".join(lines) + ("\n" if lines else ""))
        if o.save_crop:
            det.crop(o.save_dir / "crops", label_stem)
        if o.save_json:
            self.records += det.to_records()
        if self.show:
            cv2.imshow(det.source, annotated)
            cv2.waitKey(1)

    def _video(self, stem: str, det: Detections, fps: float) -> cv2.VideoWriter:
        if stem not in self.videos:
            h, w = det.image_shape
            self.videos[stem] = cv2.VideoWriter(str(self.options.save_dir / f"{stem}.mp4"),
                                                cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        return self.videos[stem]

    def close(self) -> None:
        """Finish the videos and write predictions.json."""
        for writer in self.videos.values():
            writer.release()
        self.videos.clear()
        if self.options.save_json:
            (self.options.save_dir / "predictions.json").write_text(json.dumps(self.records, indent=1))


def detect_stream(detector: Detector, source, options: OutputOptions, slicing: Slicing | None = None,
                  vid_stride: int = 1, failures: list[str] | None = None, tracker=None) -> Iterator[Detections]:
    """Detect frame by frame, writing the outputs of ``options``; yields each frame's Detections. Unreadable
    files are skipped with a line (and appended to ``failures``). ``tracker``: a
    :class:`utils.detection.tracking.SequenceTrackers`; each frame then holds its tracked boxes and
    their ids, also written to ``tracks/<sequence stem>.txt``."""
    failures = [] if failures is None else failures
    tracks = None
    if tracker is not None:
        from utils.detection.tracking import MotWriter

        tracks = MotWriter(options.save_dir / "tracks")

    def skipped(message: str) -> None:
        failures.append(message)
        LOGGER.info(f"skipped: {message}")

    writer = OutputWriter(options)
    try:
        t0 = time.perf_counter()
        tiles = (slicing.tile_hw, slicing.overlap, slicing.merge) if slicing else (None, 0.2, "nms")
        for det in detector.stream(source, *tiles, vid_stride, on_skip=skipped):
            if tracker is not None:
                det = tracker.update_detections(det)
                stem = "images" if det.frame is None else output_stem(det.source)
                tracks.write(stem, tracker.frame_number(det), det)
            ms = 1000 * (time.perf_counter() - t0)
            where = f"{det.source}" + (f" frame {det.frame + 1}" if det.frame is not None else "")
            LOGGER.info(f"{where} {det.image_shape[1]}x{det.image_shape[0]}: {det.summary()} ({ms:.0f} ms)")
            writer.write(det, fps=30.0 / vid_stride)
            yield det
            t0 = time.perf_counter()
    finally:
        writer.close()
        frames = f", {writer.frames} video/stream frames" if writer.frames else ""
        LOGGER.info(f"{writer.images} images{frames} done, {len(failures)} unreadable files skipped; results in "
                    f"{options.save_dir}")


@dataclass
class PredictionOptions(JobOptions):
    """detect.py's options (its flags' names), checked when made. ``weights`` "": the newest trained model;
    ``iou_thres`` / ``max_det`` None: the model family's (YOLOv5 0.45 / 1000, YOLOv8 / YOLO11 0.7 / 300);
    ``stream``: a generator of per-frame results instead of a list (Python callers)."""

    weights: str | list[str] = ""
    source: Any = str(PACKAGE_ROOT / "data" / "images")
    imgsz: int | list[int] = 640  # a size, or [h, w]
    conf_thres: float = 0.25
    iou_thres: float | None = None
    max_det: int | None = None
    device: str = ""
    classes: list[int] | None = None
    agnostic_nms: bool = False
    half: bool = False
    augment: bool = False
    view_img: bool = False
    save_txt: bool = False
    save_conf: bool = False
    save_json: bool = False
    save_crop: bool = False
    nosave: bool = False
    project: str = "runs/detect"
    name: str = "exp"
    exist_ok: bool = False
    line_thickness: int = 2
    hide_labels: bool = False
    hide_conf: bool = False
    vid_stride: int = 1
    max_pixels: int | None = None
    slice_hw: list[int] | None = None
    overlap: float = 0.2
    merge: str = "nms"
    track: str | None = None  # a tracker: bytetrack, botsort or a tracker YAML
    stream: bool = False

    def check(self) -> None:
        self.weights, self.imgsz = one_or_several(self.weights), one_or_several(self.imgsz)
        if self.track is not None:
            from utils.object_tracking.settings import tracker_settings

            tracker_settings(self.track)
        check_image_size(self.imgsz, 1, quiet=True)  # rounded to the model's stride once it is loaded
        problems = [(self.vid_stride >= 1, f"--vid-stride must be >= 1, got {self.vid_stride}"),
                    (self.max_pixels is None or self.max_pixels >= 1, f"--max-pixels must be >= 1, got "
                     f"{self.max_pixels}"),
                    (self.line_thickness >= 1, f"--line-thickness must be >= 1, got {self.line_thickness}")]
        for ok, message in problems:
            if not ok:
                raise ConfigurationError(message)
        self.nms()  # thresholds and box count
        self.slicing()

    def nms(self) -> NmsSettings:
        """The NMS these options ask for (the family's IoU and box count where None)."""
        return NmsSettings(self.conf_thres, self.iou_thres, self.max_det, multi_label=False, classes=self.classes,
                           agnostic=self.agnostic_nms)

    def slicing(self) -> Slicing | None:
        """The tiles of --slice, or None."""
        return Slicing(tuple(self.slice_hw), self.overlap, self.merge) if self.slice_hw else None


def run_detection(options: PredictionOptions | None = None,
                  **keywords) -> list[Detections] | Iterator[Detections]:
    """detect.py as a function (options as an object, or as keywords). Returns the Detections of every image and
    frame (frames without their images), or with ``stream`` a generator of them, one frame at a time."""
    o = options or PredictionOptions.from_dict(keywords, "run_detection")
    weights = weights_or_newest(o.weights)
    check_local_source(o.source)
    detector = Detector(weights, o.device, o.imgsz, o.nms(), o.half, augment=o.augment)
    detector.max_pixels = o.max_pixels or DEFAULT_MAX_PIXELS
    shown = " + ".join(map(str, weights)) if isinstance(weights, list) else weights
    size = "x".join(map(str, detector.imgsz)) if detector.imgsz[0] != detector.imgsz[1] else detector.imgsz[0]
    LOGGER.info(f"model {shown}: {len(detector.names)} classes, image size {size}" + (", TTA" if o.augment else ""))
    save_dir = increment_path(Path(o.project) / o.name, exist_ok=o.exist_ok)
    outputs = OutputOptions(save_dir, o.nosave, o.save_txt, o.save_conf, o.save_crop, o.save_json, o.view_img,
                            dict(thickness=o.line_thickness, hide_labels=o.hide_labels, hide_conf=o.hide_conf))
    tracker = None
    if o.track is not None:
        from utils.detection.tracking import make_tracker

        tracker = make_tracker(o.track, frame_rate=30.0 / o.vid_stride)
        LOGGER.info(f"tracking with {tracker.settings.tracker_type}")
    frames = detect_stream(detector, o.source, outputs, o.slicing(), o.vid_stride, tracker=tracker)
    return frames if o.stream else collected(frames)
