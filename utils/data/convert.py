"""Write any dataset this project reads (VOC XML, VisDrone, COCO JSON, YOLO) as YOLO txt labels in a new folder.

    python -m utils.data.convert --data hit_uav.yaml --out datasets/hit_uav_yolo
    python -m utils.data.convert --data VisDrone.yaml --out datasets/visdrone_yolo --splits train val

The new folder gets ``images/<split>/`` (symbolic links to the original images: nothing is copied or
changed), ``labels/<split>/*.txt`` and ``data.yaml``. An existing, non-empty ``--out`` is refused. Training
does not need this (the readers read the originals where they are); it is for tools that want YOLO files.
VisDrone's ignored regions have no YOLO form: they are counted and left out (train on the original folders
to keep them masked).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from utils.data.formats import DatasetError, load_dataset_config
from utils.data.scan import describe_problems, scan_split
from utils.faces import run_face


def _row(label) -> str:
    cls, cx, cy, w, h = (float(v) for v in label)
    return f"{int(cls)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def convert_dataset(data: str | Path, out: str | Path, splits: tuple[str, ...] = ("train", "val", "test")
                    ) -> dict[str, dict[str, int]]:
    """Convert ``splits`` of ``data`` into ``out``; returns per split the images, boxes, skipped images and
    ignored regions left out."""
    config = load_dataset_config(data)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: already exists and is not an empty folder; choose a new --out")
    wanted = [s for s in splits if config.get(s)]
    if not wanted:
        raise DatasetError(f"{config['yaml_file']}: none of the splits {', '.join(splits)} is defined")
    scans = {s: scan_split(config, s) for s in wanted}  # every split checked before anything is written
    summary: dict[str, dict[str, int]] = {}
    for split, scan in scans.items():
        names = [Path(p).name for p in scan.images]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise DatasetError(f"{config['yaml_file']}: split {split} has two images named {twice}; a YOLO folder "
                               f"cannot hold both")
    for split, scan in scans.items():
        images, labels = out / "images" / split, out / "labels" / split
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for path, rows in zip(scan.images, scan.labels):
            os.symlink(os.path.abspath(path), images / Path(path).name)
            (labels / Path(path).with_suffix(".txt").name).write_text("".join(_row(r) + "\n" for r in rows))
        summary[split] = {"images": len(scan.images), "boxes": scan.n_boxes, "skipped": len(scan.problems),
                          "ignored_regions": int(sum(len(r) for r in scan.ignore))}
        for line in describe_problems(scan, split):
            print(line, file=sys.stderr)
    spec = {"path": ".", **{s: f"images/{s}" for s in scans}, "names": dict(enumerate(config["names"]))}
    (out / "data.yaml").write_text(f"# converted from {config['yaml_file']} by utils.data.convert\n"
                                   + yaml.safe_dump(spec, sort_keys=False))
    return summary


def main(argv: list[str] | None = None) -> None:
    """``python -m utils.data.convert``: write YOLO labels for a dataset given in another format."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset YAML (path or name in data/)")
    p.add_argument("--out", required=True, help="a new folder")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    args = p.parse_args(argv)
    summary = run_face(convert_dataset, args.data, args.out, tuple(args.splits))
    for split, counts in summary.items():
        line = f"{split}: {counts['images']} images, {counts['boxes']} boxes -> {Path(args.out) / 'labels' / split}"
        if counts["skipped"]:
            line += f" ({counts['skipped']} images skipped, listed above)"
        if counts["ignored_regions"]:
            line += f"; {counts['ignored_regions']} ignored regions have no YOLO form and were left out"
        print(line)
    print(f"dataset YAML: {Path(args.out) / 'data.yaml'}")


if __name__ == "__main__":
    main()
