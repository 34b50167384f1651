"""Evaluate an image classifier: top-1, top-5 and per-class accuracy, and a confusion matrix.

    python classify/val.py --weights runs/classify/train/exp/weights/best.pt   # on the dataset it was trained on
    python classify/val.py --weights best.pt --data tiny_imagenet.yaml --imgsz 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a script from a checkout: its root holds utils/ and models/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.engine.command_line import prefer_sleeping_threads  # noqa: E402

prefer_sleeping_threads()  # before PyTorch loads

from utils.classification.validation import validate_classifier  # noqa: E402
from utils.faces import run_face  # noqa: E402
from utils.memory import keep_freed_memory  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="classifier checkpoint (path or name in weights/)")
    p.add_argument("--data", default=None, help="dataset YAML (default: the one the checkpoint was trained on)")
    p.add_argument("--imgsz", "--img", type=int, default=None, help="default: the training image size")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--project", default="runs/classify/val")
    p.add_argument("--name", default="exp")
    p.add_argument("--exist-ok", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run_face(keep_freed_memory)
    args = parse_args(argv)
    run_face(validate_classifier, **vars(args))


if __name__ == "__main__":
    main()
