"""Evaluate a detector: COCO AP and AP_S (pycocotools) on any dataset, plus P, R and mAP.

    python val.py --weights small_best.pt --data coco.yaml --img 640 --iou 0.65 --half --batch-size 1
    python val.py --weights a.pt b.pt --augment          # an ensemble (outputs merged before NMS), TTA
"""

from __future__ import annotations

import argparse

from utils.engine.command_line import prefer_sleeping_threads  # argparse only: --help stays instant

prefer_sleeping_threads()  # before PyTorch loads


def run(**options) -> dict:
    """val.py from Python with its options as keywords (ultralytics' names such as conf, iou, batch and plots are
    accepted too); see utils.detection.validation.run_validation."""
    from utils.detection.validation import run_validation
    from utils.options import our_names

    return run_validation(**our_names(options, "plots"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="dataset YAML (path or name in data/; default: the one the "
                   "checkpoint was trained on, else coco128.yaml)")
    p.add_argument("--weights", nargs="+", default=["space_depth_s.pt"], help="checkpoint or export (path or name "
                   "in weights/); several: an ensemble, outputs merged before NMS")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--imgsz", "--img", "--img-size", type=int, default=640)
    p.add_argument("--conf-thres", type=float, default=0.001)
    p.add_argument("--iou-thres", "--iou", type=float, default=None, help="NMS IoU (default: the model family's, "
                   "0.6 for YOLOv5 graphs as yolov5's val.py, 0.7 for YOLOv8 / YOLO11 as ultralytics' val)")
    p.add_argument("--max-det", type=int, default=300)
    p.add_argument("--task", default="val", choices=["val", "test", "speed"])
    p.add_argument("--device", default="", help="cpu, 0, 0,1 ... (default: CUDA if present)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-pixels", type=int, default=None, help="skip images with more pixels than this "
                   "(default 100,000,000: decompression bombs)")
    p.add_argument("--single-cls", action="store_true")
    p.add_argument("--augment", action="store_true", help="test-time augmentation (3 scales, a flip)")
    p.add_argument("--evaluator", default=None, choices=["faster-coco-eval", "pycocotools"], help="the COCO "
                   "scorer (default faster-coco-eval where installed: the same figures, several times faster)")
    p.add_argument("--verbose", action="store_true", help="per-class AP")
    p.add_argument("--save-txt", action="store_true")
    p.add_argument("--save-conf", action="store_true")
    p.add_argument("--save-json", action="store_true")
    p.add_argument("--project", default="runs/val")
    p.add_argument("--name", default="exp")
    p.add_argument("--exist-ok", action="store_true")
    p.add_argument("--half", action="store_true", help="FP16 inference on CUDA, bf16 on CPUs with native bf16")
    p.add_argument("--slice", dest="slice_hw", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="predict image by image as detect.py --slice does (full image + overlapping H x W tiles) "
                        "and report the full-image figures of the same pass beside the sliced ones")
    p.add_argument("--overlap", type=float, default=0.2, help="tile overlap ratio for --slice")
    p.add_argument("--merge", default="nms", choices=["nms", "nmm"], help="how --slice merges tiles: class-aware "
                   "NMS, or non-maximum merging with intersection-over-smaller >= 0.5 (sahi's NMM)")
    p.add_argument("--noplots", "--no-plots", dest="plots", action="store_false",
                   help="save no pictures (the figures and metrics.json are unchanged)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from utils.faces import run_face
    from utils.memory import keep_freed_memory

    run_face(keep_freed_memory)
    run_face(run, **vars(args))


if __name__ == "__main__":
    main()
