"""detect.py's job as a function: detect on any source and write what was asked (annotated images and videos,
YOLO label files, crops, predictions.json), for every kind of source, frame by frame.

Outputs in ``runs/detect/exp*``: ``<image name>`` and ``<video or stream stem>.mp4`` (annotated), with
``--save-txt`` ``labels/<stem>.txt`` (``<stem>_<frame>.txt`` for videos and streams, 1-based frame numbers as
yolov5), with ``--save-crop`` ``crops/<class>/<stem>[_<frame>]_<k>.jpg`` and with ``--save-json``
``predictions.json``: the records of :mod:`utils.detection.results`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from utils.boxes import yolo_label_rows
from utils.checkpoints.files import newest_run_checkpoint, resolve_weights
from utils.checkpoints.format import CheckpointError
from utils.data.images import set_max_pixels
from utils.data.sources import check_local_source, output_stem
from utils.data.tiles import MAX_OVERLAP
from utils.detection.predictor import Detector
from utils.detection.results import Detections
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path


@dataclass
class DetectOptions:
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
                                  "train one with 'python train.py' or pass --weights")
        weights = str(newest)
        LOGGER.info(f"--weights not given: the newest trained model, {weights}")
    return resolve_weights(weights)


def check_detect_options(imgsz, vid_stride: int, slice_hw: list[int] | None, overlap: float) -> None:
    check_image_size(imgsz, 1, quiet=True)  # refused before any work; rounded to the model's stride once loaded
    problems = [(vid_stride < 1, f"--vid-stride must be >= 1, got {vid_stride}"),
                (slice_hw is not None and min(slice_hw) < 32, f"--slice needs tiles of at least 32x32, got {slice_hw}"),
                (not 0 <= overlap <= MAX_OVERLAP, f"--overlap must be in [0, {MAX_OVERLAP:g}], got {overlap}")]
    for bad, message in problems:
        if bad:
            raise ValueError(message)


def display_available() -> bool:
    """Whether a window can be shown: a display server, and an OpenCV built with its GUI."""
    if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("yolov5-spd probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("yolov5-spd probe")
        return True
    except cv2.error:
        return False


class OutputWriter:
    """Writes one run's files as the frames come; counts what it saw."""

    def __init__(self, options: DetectOptions) -> None:
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
            lines = yolo_label_rows(det.classes, det.boxes, det.image_shape, det.scores if o.save_conf else None)
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
        for writer in self.videos.values():
            writer.release()
        self.videos.clear()
        if self.options.save_json:
            (self.options.save_dir / "predictions.json").write_text(json.dumps(self.records, indent=1))


def detect_stream(detector: Detector, source, options: DetectOptions, slice_hw=None, overlap: float = 0.2,
                  merge: str = "nms", vid_stride: int = 1, failures: list[str] | None = None) -> Iterator[Detections]:
    """Detect frame by frame, writing the outputs of ``options``; yields each frame's Detections. Unreadable
    files are skipped with a line (and appended to ``failures``)."""
    failures = [] if failures is None else failures

    def skipped(message: str) -> None:
        failures.append(message)
        LOGGER.info(f"skipped: {message}")

    writer = OutputWriter(options)
    try:
        t0 = time.perf_counter()
        for det in detector.stream(source, slice_hw, overlap, merge, vid_stride, on_skip=skipped):
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


def run_detection(weights: str | list[str] = "", source="data/images", imgsz: int | list[int] = 640,
                  conf_thres: float = 0.25, iou_thres: float | None = None, max_det: int | None = None,
                  device: str = "",
                  classes: list[int] | None = None, agnostic_nms: bool = False, half: bool = False,
                  augment: bool = False, save_txt: bool = False, save_conf: bool = False, save_json: bool = False,
                  save_crop: bool = False, nosave: bool = False, view_img: bool = False,
                  project: str = "runs/detect", name: str = "exp", exist_ok: bool = False, line_thickness: int = 2,
                  hide_labels: bool = False, hide_conf: bool = False, vid_stride: int = 1,
                  slice_hw: list[int] | None = None, overlap: float = 0.2, max_pixels: int | None = None,
                  merge: str = "nms", stream: bool = False) -> list[Detections] | Iterator[Detections]:
    """detect.py as a function. Returns the Detections of every image and frame (frames without their
    images), or with ``stream=True`` a generator of them, one frame at a time. ``iou_thres`` / ``max_det`` None:
    the model family's (YOLOv5 0.45 / 1000, YOLOv8 / YOLO11 0.7 / 300)."""
    imgsz = imgsz[0] if isinstance(imgsz, (list, tuple)) and len(imgsz) == 1 else imgsz
    check_detect_options(imgsz, vid_stride, slice_hw, overlap)
    if max_pixels is not None:
        set_max_pixels(max_pixels)
    weights = weights_or_newest(weights)
    check_local_source(source)
    detector = Detector(weights, device, imgsz, conf_thres, iou_thres, max_det, classes, agnostic_nms, half,
                        augment=augment)
    shown = " + ".join(map(str, weights)) if isinstance(weights, list) else weights
    size = "x".join(map(str, detector.imgsz)) if detector.imgsz[0] != detector.imgsz[1] else detector.imgsz[0]
    LOGGER.info(f"model {shown}: {len(detector.names)} classes, image size {size}" + (", TTA" if augment else ""))
    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    options = DetectOptions(save_dir, nosave, save_txt, save_conf, save_crop, save_json, view_img,
                            dict(thickness=line_thickness, hide_labels=hide_labels, hide_conf=hide_conf))
    frames = detect_stream(detector, source, options, tuple(slice_hw) if slice_hw else None, overlap, merge,
                           vid_stride)
    if stream:
        return frames
    results = []
    for det in frames:
        if det.frame is not None:
            det.image = None  # a long video's frames would fill the memory
        results.append(det)
    return results
