"""Detect objects in images, videos, cameras and streams.

    python detect.py                                    # newest trained model on data/images
    python detect.py --weights best.pt --source img.jpg # an image, folder, glob, .txt list or video
    python detect.py --weights best.pt --source 0       # webcam 0; or rtsp://, rtmp://, http(s):// streams
    python detect.py --weights best.pt --source https://host/img.jpg   # fetched because named (10 s timeout)
    python detect.py --weights best.pt --source cams.streams           # one source per line, frames batched
    python detect.py --weights best.pt --source "screen 1 0 0 640 480" # a screen region (pip install mss)
    python detect.py --weights best.pt --source aerial.jpg --slice 512 512 --overlap 0.2   # tiny objects
    python detect.py --weights a.pt b.pt --augment --imgsz 384 640     # ensemble, TTA, rectangular size
    python detect.py --weights best.pt --source clip.mp4 --track       # ByteTrack ids (--track botsort)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from utils.engine.command_line import prefer_sleeping_threads  # argparse only: --help stays instant

prefer_sleeping_threads()  # before PyTorch loads

ROOT = Path(__file__).resolve().parent


def run(**options):
    """detect.py from Python with its options as keywords; see utils.detection.prediction.run_detection
    (``stream=True`` returns a generator of per-frame Detections)."""
    from utils.detection.prediction import run_detection
    from utils.options import our_names

    return run_detection(**our_names(options, "plots"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", nargs="+", default=[""], help="checkpoint or export; several: an ensemble "
                   "(outputs merged before NMS) (default: newest runs/train/*/weights/best.pt)")
    p.add_argument("--source", default=str(ROOT / "data" / "images"), help="file, folder, glob, .txt list, video, "
                   "camera index, rtsp/rtmp/http(s) stream or URL, .streams file")
    p.add_argument("--imgsz", "--img", "--img-size", type=int, nargs="+", default=[640], help="size, or H W")
    p.add_argument("--conf-thres", type=float, default=0.25)
    p.add_argument("--iou-thres", type=float, default=None, help="NMS IoU (default: 0.45 for YOLOv5 graphs, 0.7 "
                   "for YOLOv8 / YOLO11, as yolov5 and ultralytics predict)")
    p.add_argument("--max-det", type=int, default=None, help="most boxes per image (default: 1000 for YOLOv5 "
                   "graphs, 300 for YOLOv8 / YOLO11)")
    p.add_argument("--device", default="")
    p.add_argument("--classes", type=int, nargs="+", help="keep only these class ids")
    p.add_argument("--agnostic-nms", action="store_true")
    p.add_argument("--half", action="store_true", help="FP16 on CUDA, bf16 on CPUs with native bf16")
    p.add_argument("--augment", action="store_true", help="test-time augmentation (3 scales, a flip)")
    p.add_argument("--view-img", action="store_true", help="show the results in a window (where a display exists)")
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
    p.add_argument("--track", nargs="?", const="bytetrack", default=None, metavar="TRACKER",
                   help="follow objects across video, stream and image-sequence frames with persistent ids: "
                   "bytetrack (the default when given alone), botsort (camera-motion compensated) or a tracker "
                   "YAML; ids drawn on the frames and written as tracks/<stem>.txt (MOT challenge rows)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from utils.faces import run_face
    from utils.memory import keep_freed_memory

    run_face(keep_freed_memory)
    run_face(run, **vars(args))


if __name__ == "__main__":
    main()
