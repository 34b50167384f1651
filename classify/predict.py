"""Classify images: the top-5 classes per image, printed, and annotated copies in the run folder.

    python classify/predict.py --weights runs/classify/train/exp/weights/best.pt --source path/to/images
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

if not __package__:  # run as a script from a checkout: its root holds utils/ and models/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.engine.command_line import prefer_sleeping_threads  # noqa: E402

prefer_sleeping_threads()  # before PyTorch loads

from utils.classification.prediction import Classifier  # noqa: E402
from utils.data.formats import IMAGE_SUFFIXES  # noqa: E402
from utils.data.images import read_image  # noqa: E402
from utils.faces import run_face  # noqa: E402
from utils.logging import LOGGER, increment_path  # noqa: E402
from utils.memory import keep_freed_memory  # noqa: E402


def run(weights: str, source: str, imgsz: int | None = None, device: str = "", top: int = 5, nosave: bool = False,
        project: str = "runs/classify/predict", name: str = "exp", exist_ok: bool = False) -> dict[str, list]:
    """Top-``top`` (class, probability) per image of ``source`` (a file or a folder); unreadable files are
    reported and skipped."""
    path = Path(source)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise FileNotFoundError(f"{source}: no images found")
    classifier = Classifier(weights, device, imgsz, top)
    save_dir = None if nosave else increment_path(Path(project) / name, exist_ok=exist_ok)
    results = {}
    for file in files:
        try:
            image = read_image(file)
        except ValueError as exc:
            LOGGER.info(f"skipped: {exc}")
            continue
        ranked = classifier.predict_one(image)
        results[str(file)] = ranked
        LOGGER.info(f"{file}: " + ", ".join(f"{n} {p:.2f}" for n, p in ranked))
        if save_dir is not None:
            cv2.imwrite(str(save_dir / file.name), annotate(image, ranked))
    if save_dir is not None:
        LOGGER.info(f"{len(results)} images; annotated copies in {save_dir}")
    return results


def annotate(image, ranked: list[tuple[str, float]]):
    """The image (enlarged to at least 256 px) with the ranked classes written on it."""
    h, w = image.shape[:2]
    scale = max(1.0, 256 / min(h, w))
    out = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_NEAREST)
    for k, (label, p) in enumerate(ranked):
        y = 22 + 22 * k
        text = f"{label} {p:.2f}"
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--source", required=True, help="an image or a folder of images")
    p.add_argument("--imgsz", "--img", type=int, default=None, help="default: the training image size")
    p.add_argument("--device", default="")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--nosave", action="store_true")
    p.add_argument("--project", default="runs/classify/predict")
    p.add_argument("--name", default="exp")
    p.add_argument("--exist-ok", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run_face(keep_freed_memory)
    args = parse_args(argv)
    run_face(run, **vars(args))


if __name__ == "__main__":
    main()
