"""Train YOLOv5-SPD (or a strided YOLOv5 baseline) with the paper's recipe.

    python train.py                                   # space_depth_n on the embedded small-object set
    python train.py --cfg space_depth_s.yaml          # the s model, same quick defaults
    python train.py --cfg space_depth_s.yaml --data coco.yaml --hyp hyp.scratch.yaml --epochs 300 --imgsz 640 \
        --batch-size 64                               # the paper's full recipe
    torchrun --nproc_per_node 2 train.py --cfg space_depth_s.yaml --batch-size 32   # DDP
    python train.py --resume                          # continue the latest run after an interruption
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from utils.engine.command_line import (  # argparse only
    add_execution_arguments,
    add_tracking_arguments,
    prefer_sleeping_threads,
)

prefer_sleeping_threads()  # before PyTorch loads

if TYPE_CHECKING:  # the heavy modules load after the arguments are parsed (--help prints at once)
    from utils.engine.config import TrainConfig


def train(options, callbacks: list | tuple = ()) -> dict:
    """utils.detection.task.train: options as a dict or a checked TrainConfig; ``callbacks``: hook objects
    (utils.engine.hooks.Hook)."""
    from utils.detection.task import train as train_detector

    return train_detector(options, callbacks=callbacks)


def run(callbacks: list | tuple = (), **options) -> dict:
    """Train from Python with train.py's options as keywords (like ``val.run`` and ``detect.run``);
    ``callbacks`` are hook objects observing the run (see utils/engine/hooks.py for the events)."""
    from utils.options import our_names

    return train(our_names(options, "noplots"), callbacks=callbacks)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """The command line as a checked TrainConfig."""
    return _checked(_parser().parse_args(argv))


def _checked(args: argparse.Namespace) -> TrainConfig:
    from utils.detection.task import detection_config

    driver = {"evolve", "evolve_fitness", "evolve_sampler"}  # options of the evolution around the runs, not of a run
    return detection_config({k: v for k, v in vars(args).items()
                             if (v is not None or k == "epochs") and k not in driver})


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default="", help="model YAML, path or name in configs/ (default: the --weights "
                   "model, else space_depth_n.yaml)")
    p.add_argument("--data", default="smallobj.yaml", help="dataset YAML (path or name in data/)")
    p.add_argument("--hyp", default=None, help="hyper-parameters, path or name in configs/ (default: "
                   "hyp.quick.yaml; with --weights hyp.finetune.yaml when the dataset has the checkpoint's classes, "
                   "else hyp.finetune_new_domain.yaml; hyp.scratch.yaml: the paper's recipe)")
    p.add_argument("--weights", default="", help="start from a checkpoint (ours or YOLOv5-family); a YOLOv5 "
                   "checkpoint moves exactly into the SPD form of its graph (--cfg space_depth_*.yaml or --spd)")
    p.add_argument("--spd", action="store_true", help="train the SPD form of --cfg (or of the --weights graph): "
                   "every stride-2 Conv becomes a stride-1 Conv + SpaceToDepth")
    p.add_argument("--partial-transfer", action="store_true", help="when --weights cannot be mapped exactly "
                   "onto --cfg, copy the tensors that match by name and shape instead of stopping")
    p.add_argument("--epochs", type=int, default=None, help="total epochs (default 30)")
    p.add_argument("--batch-size", type=int, default=16, help="total batch size over all processes")
    p.add_argument("--imgsz", "--img", "--img-size", type=int, default=256, help="training image size")
    p.add_argument("--device", default="", help="cpu, 0, 0,1 ... (default: CUDA if present)")
    p.add_argument("--workers", type=int, default=2, help="data loader worker processes per rank")
    p.add_argument("--max-pixels", type=int, default=None, help="skip images with more pixels than this "
                   "(default 100,000,000: decompression bombs)")
    p.add_argument("--project", default="runs/train")
    p.add_argument("--name", default="exp")
    p.add_argument("--exist-ok", action="store_true")
    p.add_argument("--resume", nargs="?", const=True, default=False,
                   help="resume the latest run, or the given last.pt")
    p.add_argument("--keep-optimizer", action="store_true", help="keep the optimiser state in last.pt when the "
                   "run finishes (default: stripped, a third smaller; --resume --epochs N then restarts SGD momentum)")
    p.add_argument("--resume-changed-data", action="store_true", help="let --resume continue although the "
                   "training images or labels changed since last.pt (the class list can never change)")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP on GPUs")
    p.add_argument("--cache", nargs="?", const="ram", default=None, choices=["ram", "disk"],
                   help="keep decoded, resized training images in RAM (--cache, --cache ram) or in the user's "
                        "cache folder (--cache disk; never inside the dataset)")
    p.add_argument("--tile", type=int, default=0, help="train on overlapping N x N windows of the images at "
                   "native resolution instead of shrinking whole images to --imgsz (use --imgsz N too)")
    p.add_argument("--tile-overlap", type=float, default=0.2, help="overlap of neighbouring --tile windows")
    p.add_argument("--tile-empty", type=float, default=0.1, help="share of the windows without any box that "
                   "are kept (background to learn, not a flood of it)")
    p.add_argument("--val-tiles", action="store_true", help="validate on the same windows (default: whole "
                   "images, rectangular batches)")
    p.add_argument("--exact-decode", action="store_true", help="decode every JPEG at full size (default: a JPEG "
                   "at least twice --imgsz decodes at 1/2, 1/4 or 1/8 scale, which skips work; same boxes)")
    p.add_argument("--noval", action="store_true", help="validate only after the final epoch")
    p.add_argument("--val-period", type=int, default=1, help="validate every N epochs (and after the last)")
    p.add_argument("--fast-val", action="store_true", help="per-epoch validation without pycocotools (own P, R, "
                   "mAP only); the final evaluation of best.pt is always full")
    p.add_argument("--noplots", "--no-plots", action="store_true", help="save no pictures (labels.jpg, train "
                   "batches, curves, confusion matrix, results.png); the figures and results.csv are unchanged")
    p.add_argument("--val-first", action="store_true", help="also validate the starting weights before the "
                   "first step (row -1 of results.csv)")
    p.add_argument("--nosave", action="store_true", help="save only the final checkpoint")
    p.add_argument("--patience", type=int, default=100, help="early stop after this many epochs without "
                   "improvement (0: never)")
    p.add_argument("--save-period", type=int, default=-1, help="also save every N epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--freeze", type=int, nargs="+", default=[0], help="freeze the first N layers, or a list")
    p.add_argument("--multi-scale", action="store_true", help="random image size 0.5x-1.5x per batch")
    p.add_argument("--rect", action="store_true", help="rectangular training batches (no mosaic)")
    p.add_argument("--single-cls", action="store_true", help="train as one class")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--optimizer", default=None, choices=["SGD", "Adam", "AdamW", "auto"],
                   help="default: the hyp file's 'optimizer', else SGD; auto: ultralytics' pick (AdamW for runs "
                   "up to 10,000 steps, else SGD)")
    add_execution_arguments(p)
    schedule = p.add_mutually_exclusive_group()
    schedule.add_argument("--cos-lr", dest="linear_lr", action="store_false", default=False,
                          help="cosine learning-rate decay (default, the paper's, unless the hyp file's 'schedule' "
                               "says linear)")
    schedule.add_argument("--linear-lr", dest="linear_lr", action="store_true")
    p.add_argument("--noautoanchor", action="store_true")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    add_tracking_arguments(p)
    return p


def _evolve(args: argparse.Namespace) -> None:
    from utils.detection.task import choose_finetune_recipe
    from utils.engine.evolve import evolve

    evolve(train, choose_finetune_recipe(_checked(args)), args.evolve, args.evolve_fitness,
           sampler=args.evolve_sampler)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)  # --help and usage errors end here, before the heavy imports
    from utils.faces import run_face
    from utils.memory import keep_freed_memory

    run_face(keep_freed_memory)
    if args.evolve is not None:
        run_face(_evolve, args)
        return
    result = run_face(lambda: train(_checked(args)))
    if "signal" in result:  # interrupted: last.pt is saved, but the run did not finish
        raise SystemExit(128 + result["signal"])


if __name__ == "__main__":
    main()
