"""Tracking on real images with known identities: camera sequences made from still photographs by moving a
window over them along a known path (a pan with a shake), so every labelled object's box and identity is known in
every frame. The detector runs on each frame; ByteTrack and BoT-SORT get the same detections; IDF1 and identity
switches are scored against the known tracks (utils/object_tracking/metrics.py).

    scripts/env.sh python benchmarks/tracking.py                    # yolov5n.pt on coco128 val2017 (../shared)
    scripts/env.sh python benchmarks/tracking.py --weights best.pt --images ../shared/data/hit_uav/images/val \\
        --labels ../shared/data/hit_uav/labels/val --step 12

Prints one row per tracker (IDF1, IDP, IDR, ID switches, boxes) and writes the same as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def window_path(frames: int, room: tuple[int, int], step: float, shake: float, seed: int) -> np.ndarray:
    """(frames, 2) top-left corners: a pan back and forth across ``room`` (x, y) at ``step`` px per frame,
    plus a random shake of up to ``shake`` px."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    span = max(room[0], 1)
    x = np.abs((t * step) % (2 * span) - span)  # there and back
    y = room[1] / 2 + room[1] / 2 * np.sin(t / 15)
    jitter = rng.uniform(-shake, shake, (frames, 2))
    return np.clip(np.stack([x, y], 1) + jitter, 0, [room[0], room[1]]).round().astype(int)


def visible_truth(labels: np.ndarray, image_wh: tuple[int, int], corner: np.ndarray,
                  window_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The labelled boxes at least half inside the window, in window pixels, with their row index as id."""
    w, h = image_wh
    cx, cy, bw, bh = (labels[:, 1:5] * [w, h, w, h]).T
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) - np.tile(corner, 2)
    clipped = np.clip(boxes, 0, np.tile(window_wh, 2))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = ((clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])) >= 0.5 * np.maximum(area, 1e-9)
    return clipped[kept], np.flatnonzero(kept) + 1


def sequences(images: Path, labels: Path, count: int, least: int) -> list[tuple[Path, np.ndarray]]:
    """The ``count`` images with the most labelled boxes (at least ``least``)."""
    found = []
    for label in sorted(labels.glob("*.txt")):
        rows = np.loadtxt(label, ndmin=2) if label.stat().st_size else np.zeros((0, 5))
        image = next((p for p in (images / f"{label.stem}{s}" for s in (".jpg", ".png", ".jpeg")) if p.is_file()),
                     None)
        if image is not None and len(rows) >= least:
            found.append((image, rows))
    found.sort(key=lambda item: -len(item[1]))
    return found[:count]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(SHARED / "weights" / "yolov5n.pt"))
    p.add_argument("--images", default=str(SHARED / "data" / "coco128" / "images" / "val2017"))
    p.add_argument("--labels", default=str(SHARED / "data" / "coco128" / "labels" / "val2017"))
    p.add_argument("--sequences", type=int, default=5, help="how many images become sequences")
    p.add_argument("--least", type=int, default=6, help="fewest labelled boxes for an image to be used")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--window", type=float, default=0.7, help="window side as a fraction of the image")
    p.add_argument("--step", type=float, default=6.0, help="pan speed, px per frame")
    p.add_argument("--shake", type=float, default=3.0, help="random camera shake, px")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--conf", type=float, default=0.1)
    p.add_argument("--trackers", nargs="+", default=["bytetrack", "botsort"])
    p.add_argument("--json", default="", help="also write the figures here")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from utils.boxes import NmsSettings
    from utils.detection.prediction import Detector
    from utils.object_tracking.byte_tracker import ByteTracker
    from utils.object_tracking.metrics import identity_scores
    from utils.object_tracking.settings import tracker_settings

    detector = Detector(args.weights, device="cpu", imgsz=args.imgsz, nms=NmsSettings.prediction(args.conf))
    chosen = sequences(Path(args.images), Path(args.labels), args.sequences, args.least)
    if not chosen:
        raise SystemExit(f"{args.labels}: no image with at least {args.least} labelled boxes")
    totals = {name: {"truth": [], "predicted": []} for name in args.trackers}
    for k, (image_path, rows) in enumerate(chosen):
        image = cv2.imread(str(image_path))
        h, w = image.shape[:2]
        ww, wh = int(w * args.window), int(h * args.window)
        corners = window_path(args.frames, (w - ww, h - wh), args.step, args.shake, seed=k)
        trackers = {name: ByteTracker(tracker_settings(name)) for name in args.trackers}
        for corner in corners:
            frame = np.ascontiguousarray(image[corner[1]:corner[1] + wh, corner[0]:corner[0] + ww])
            det = detector.predict_one(frame)
            truth = visible_truth(rows, (w, h), corner, (ww, wh))
            for name, tracker in trackers.items():
                pairs = tracker.update(det.xyxy, det.scores, det.classes, frame)
                keep = [d for d, _ in pairs]
                totals[name]["truth"].append((truth[0], truth[1] + 1000 * k))  # ids unique per sequence
                totals[name]["predicted"].append((det.xyxy[keep], np.array([t for _, t in pairs]) + 1000 * k))
        print(f"sequence {k + 1}: {image_path.name} ({len(rows)} labelled boxes), {args.frames} frames of {ww}x{wh}")
    report = {"weights": str(args.weights), "images": str(args.images), "sequences": [p.name for p, _ in chosen],
              "frames": args.frames, "step_px": args.step, "shake_px": args.shake, "conf": args.conf,
              "imgsz": args.imgsz, "trackers": {}}
    print(f"{'tracker':<10}{'IDF1':>8}{'IDP':>8}{'IDR':>8}{'ID sw':>8}{'true':>8}{'tracked':>9}")
    for name, runs in totals.items():
        scores = identity_scores(runs["truth"], runs["predicted"])
        report["trackers"][name] = scores
        print(f"{name:<10}{scores['IDF1']:>8.3f}{scores['IDP']:>8.3f}{scores['IDR']:>8.3f}"
              f"{scores['ID switches']:>8d}{scores['true boxes']:>8d}{scores['predicted boxes']:>9d}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
