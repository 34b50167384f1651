"""Detect objects in images and videos.

    python detect.py                                    # newest trained model on data/images
    python detect.py --weights best.pt --source img.jpg # an image, folder, glob, .txt list or video
    python detect.py --weights best.pt --source aerial.jpg --slice 512 512 --overlap 0.2   # tiny objects
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

import cv2
import numpy as np

from utils.boxes import yolo_label_rows
from utils.checkpoints.files import newest_run_checkpoint
from utils.checkpoints.format import CheckpointError
from utils.data.formats import IMAGE_SUFFIXES
from utils.data.images import read_image, set_max_pixels
from utils.detection.predictor import Detections, Detector
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path
from utils.memory import keep_freed_memory
from utils.paths import safe_path_component
from utils.plots import draw_boxes

ROOT = Path(__file__).resolve().parent
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpeg", ".mpg", ".wmv"}


def newest_trained_weights(project: Path = Path("runs") / "train") -> Path | None:
    """The newest best.pt under runs/train of the current folder, where train.py writes by default."""
    return newest_run_checkpoint(project, "best.pt")


def list_sources(source: str) -> list[Path]:
    """Files from an image or video path, a folder, a glob pattern or a .txt list."""
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if path.is_file() and path.suffix == ".txt":
        return [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
    if path.is_file():
        return [path]
    matches = sorted(Path(p) for p in glob.glob(source, recursive=True))
    if not matches:
        raise FileNotFoundError(f"{source}: no such file, folder or matching files")
    return matches


def run(weights: str = "", source: str = str(ROOT / "data" / "images"), imgsz: int = 640,
        conf_thres: float = 0.25, iou_thres: float = 0.45, max_det: int = 1000, device: str = "",
        classes: list[int] | None = None, agnostic_nms: bool = False, half: bool = False,
        save_txt: bool = False, save_conf: bool = False, save_json: bool = False, save_crop: bool = False,
        nosave: bool = False, project: str = "runs/detect", name: str = "exp", exist_ok: bool = False,
        line_thickness: int = 2, hide_labels: bool = False, hide_conf: bool = False, vid_stride: int = 1,
        slice_hw: list[int] | None = None, overlap: float = 0.2, max_pixels: int | None = None,
        merge: str = "nms") -> list[Detections]:
    """Detect on every file of ``source``; returns the detections of the images (not of video frames)."""
    _check_options(imgsz, vid_stride, slice_hw, overlap)
    if max_pixels is not None:
        set_max_pixels(max_pixels)
    weights = _weights_or_newest(weights)
    detector = Detector(weights, device, imgsz, conf_thres, iou_thres, max_det, classes,
                        agnostic_nms, half)
    LOGGER.info(f"model {weights}: {len(detector.names)} classes, image size {detector.imgsz}")
    files = list_sources(source)
    if not files:
        raise FileNotFoundError(f"{source}: no images or videos found")
    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    slice_pair = tuple(slice_hw) if slice_hw else None
    style = dict(thickness=line_thickness, hide_labels=hide_labels, hide_conf=hide_conf)
    results, records, failures, frames = [], [], 0, 0
    for file in files:
        if file.suffix.lower() in VIDEO_SUFFIXES:
            done = _run_video(detector, file, save_dir, vid_stride, nosave, slice_pair, overlap, style,
                              save_txt, save_conf)
            failures += done is None
            frames += done or 0
            continue
        t0 = time.perf_counter()
        try:
            image = read_image(file)
        except ValueError as exc:
            LOGGER.info(f"skipped: {exc}")
            failures += 1
            continue
        det = detector.predict_one(image, str(file), slice_pair, overlap, merge)
        ms = 1000 * (time.perf_counter() - t0)
        LOGGER.info(f"{file} {image.shape[1]}x{image.shape[0]}: {_describe(det)} ({ms:.0f} ms)")
        results.append(det)
        if not nosave:
            annotated = draw_boxes(image.copy(), det.boxes, det.classes, det.names, det.scores, **style)
            cv2.imwrite(str(save_dir / file.name), annotated)
        if save_txt:
            _write_txt(det, save_dir / "labels" / f"{file.stem}.txt", save_conf)
        if save_crop:
            _write_crops(image, det, save_dir / "crops", file.stem)
        if save_json:
            records += [{"file": file.name, **r} for r in det.to_list()]
    if save_json:
        (save_dir / "predictions.json").write_text(json.dumps(records, indent=1))
    video = f", {frames} video frames" if frames else ""
    LOGGER.info(f"{len(results)} images{video} done, {failures} unreadable files skipped; results in {save_dir}")
    return results


def _check_options(imgsz: int, vid_stride: int, slice_hw: list[int] | None, overlap: float) -> None:
    check_image_size(imgsz, 1, quiet=True)  # refused before any work; rounded to the model's stride once loaded
    problems = [(vid_stride < 1, f"--vid-stride must be >= 1, got {vid_stride}"),
                (slice_hw is not None and min(slice_hw) < 32, f"--slice needs tiles of at least 32x32, got {slice_hw}"),
                (not 0 <= overlap < 1, f"--overlap must be in [0, 1), got {overlap}")]
    for bad, message in problems:
        if bad:
            raise ValueError(message)


def _weights_or_newest(weights: str) -> Path:
    if not weights:
        newest = newest_trained_weights()
        if newest is None:
            raise CheckpointError("no --weights given and no trained model in runs/train/*/weights/best.pt: "
                                  "train one with 'python train.py' or pass --weights")
        weights = str(newest)
        LOGGER.info(f"--weights not given: the newest trained model, {weights}")
    from utils.checkpoints.files import resolve_weights

    return resolve_weights(weights)


def _describe(det: Detections) -> str:
    if not len(det):
        return "no detections"
    names, counts = np.unique(det.names_of(), return_counts=True)
    return ", ".join(f"{n} {name}" for name, n in zip(names, counts))


def _write_txt(det: Detections, path: Path, save_conf: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = yolo_label_rows(det.classes, det.boxes, det.image_shape, det.scores if save_conf else None)
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def _write_crops(image: np.ndarray, det: Detections, folder: Path, stem: str) -> None:
    for k, (box, cls) in enumerate(zip(det.boxes.astype(int), det.classes)):
        out = folder / safe_path_component(det.names[int(cls)])
        out.mkdir(parents=True, exist_ok=True)
        x1, y1, x2, y2 = box
        if x2 > x1 and y2 > y1:
            cv2.imwrite(str(out / f"{stem}_{k}.jpg"), image[y1:y2, x1:x2])


def _run_video(detector: Detector, file: Path, save_dir: Path, vid_stride: int, nosave: bool,
               slice_hw, overlap: float, style: dict, save_txt: bool = False, save_conf: bool = False) -> int | None:
    """Every vid_stride-th frame; --save-txt writes labels/<stem>_<frame>.txt (1-based frame, as yolov5).
    Returns the frames detected on, None for a file that is not a readable video."""
    capture = cv2.VideoCapture(str(file))
    if not capture.isOpened():
        LOGGER.info(f"skipped: {file}: not a readable video")
        return None
    fps = capture.get(cv2.CAP_PROP_FPS) or 30
    writer = None
    frame_index = done = 0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if frame_index % vid_stride == 0:
            det = detector.predict_one(frame, f"{file}:{frame_index}", slice_hw, overlap)
            done += 1
            LOGGER.info(f"{file} frame {frame_index + 1}/{total}: {_describe(det)}")
            if save_txt:
                _write_txt(det, save_dir / "labels" / f"{file.stem}_{frame_index + 1}.txt", save_conf)
            if not nosave:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(save_dir / f"{file.stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                             fps / vid_stride, (w, h))
                writer.write(draw_boxes(frame, det.boxes, det.classes, det.names, det.scores, **style))
        frame_index += 1
    capture.release()
    if writer is not None:
        writer.release()
    return done


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="", help="checkpoint (default: newest runs/train/*/weights/best.pt)")
    p.add_argument("--source", default=str(ROOT / "data" / "images"))
    p.add_argument("--imgsz", "--img", "--img-size", type=int, default=640)
    p.add_argument("--conf-thres", type=float, default=0.25)
    p.add_argument("--iou-thres", type=float, default=0.45)
    p.add_argument("--max-det", type=int, default=1000)
    p.add_argument("--device", default="")
    p.add_argument("--classes", type=int, nargs="+", help="keep only these class ids")
    p.add_argument("--agnostic-nms", action="store_true")
    p.add_argument("--half", action="store_true", help="FP16 on CUDA, bf16 on CPUs with native bf16")
    p.add_argument("--save-txt", action="store_true")
    p.add_argument("--save-conf", action="store_true")
    p.add_argument("--save-json", action="store_true")
    p.add_argument("--save-crop", action="store_true")
    p.add_argument("--nosave", action="store_true", help="do not write annotated images/videos")
    p.add_argument("--project", default="runs/detect")
    p.add_argument("--name", default="exp")
    p.add_argument("--exist-ok", action="store_true")
    p.add_argument("--line-thickness", type=int, default=2)
    p.add_argument("--hide-labels", action="store_true")
    p.add_argument("--hide-conf", action="store_true")
    p.add_argument("--vid-stride", type=int, default=1)
    p.add_argument("--max-pixels", type=int, default=None, help="skip images with more pixels than this "
                   "(default 100,000,000: decompression bombs)")
    p.add_argument("--slice", dest="slice_hw", type=int, nargs=2, metavar=("H", "W"),
                   help="also run on overlapping H x W tiles (small objects in big images)")
    p.add_argument("--overlap", type=float, default=0.2, help="tile overlap ratio for --slice")
    p.add_argument("--merge", default="nms", choices=["nms", "nmm"], help="how --slice merges tiles: class-aware "
                   "NMS, or non-maximum merging with intersection-over-smaller >= 0.5 (sahi's NMM)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    keep_freed_memory()
    args = parse_args(argv)
    try:
        run(**vars(args))
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
