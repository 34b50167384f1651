"""Train an image classifier (ResNet18-SPD by default) on the shared training loop.

    python classify/train.py                                       # resnet18_spd on the embedded 32x32 set
    python classify/train.py --model resnet18.yaml                 # the strided baseline, same recipe
    python classify/train.py --model resnet18_spd.yaml --data tiny_imagenet.yaml --imgsz 64 --epochs 200 \
        --batch-size 256 --hyp hyp.classify_tiny_imagenet.yaml    # the paper's Tiny ImageNet recipe
    torchrun --nproc_per_node 2 classify/train.py --batch-size 128  # DDP
    python classify/train.py --resume                              # continue the newest run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a script from a checkout: its root holds utils/ and models/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.engine.command_line import prefer_sleeping_threads  # noqa: E402

prefer_sleeping_threads()  # before PyTorch loads

from utils.classification.task import DEFAULTS, classification_config, train_classifier  # noqa: E402
from utils.engine.command_line import add_execution_arguments, add_tracking_arguments  # noqa: E402
from utils.faces import run_face  # noqa: E402
from utils.memory import keep_freed_memory  # noqa: E402


def run(callbacks: list | tuple = (), **options) -> dict:
    """Train from Python with this script's options as keywords; ``callbacks`` are hook objects
    (utils/engine/hooks.py lists the events)."""
    return train_classifier(options, callbacks=callbacks)


def parse_args(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", dest="cfg", default=DEFAULTS["cfg"], help="model YAML (path or name in configs/)")
    p.add_argument("--data", default=DEFAULTS["data"], help="classification dataset YAML (path or name in data/)")
    p.add_argument("--hyp", default=DEFAULTS["hyp"], help="hyper-parameters (hyp.classify_tiny_imagenet.yaml: "
                   "the authors' Tiny ImageNet recipe)")
    p.add_argument("--weights", default="", help="start from a checkpoint (tensors of the same name and shape)")
    p.add_argument("--epochs", type=int, default=None, help=f"total epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="total over all processes")
    p.add_argument("--imgsz", "--img", type=int, default=DEFAULTS["imgsz"], help="image size (square)")
    p.add_argument("--device", default="", help="cpu, 0, 0,1 ... (default: CUDA if present)")
    p.add_argument("--workers", type=int, default=2, help="data loader workers per process")
    p.add_argument("--project", default=DEFAULTS["project"])
    p.add_argument("--name", default="exp")
    p.add_argument("--exist-ok", action="store_true")
    p.add_argument("--resume", nargs="?", const=True, default=False, help="the newest run, or the given last.pt")
    p.add_argument("--noval", action="store_true", help="validate only after the final epoch")
    p.add_argument("--val-period", type=int, default=1, help="validate every N epochs (and after the last)")
    p.add_argument("--val-first", action="store_true", help="also validate the starting weights")
    p.add_argument("--noplots", "--no-plots", action="store_true", help="no confusion matrix or results.png")
    p.add_argument("--nosave", action="store_true")
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--save-period", type=int, default=-1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--optimizer", default=None, choices=["SGD", "Adam", "AdamW"])
    add_execution_arguments(p)
    p.add_argument("--linear-lr", action="store_true", help="linear instead of cosine lr decay")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    add_tracking_arguments(p, default_fitness="top1")
    args = vars(p.parse_args(argv))
    args["epochs"] = args["epochs"] or DEFAULTS["epochs"]
    return {k: v for k, v in args.items() if v is not None}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    generations, fitness_name = args.pop("evolve", None), args.pop("evolve_fitness")
    sampler = args.pop("evolve_sampler")
    run_face(keep_freed_memory)
    if generations is not None:
        from utils.engine.evolve import evolve

        run_face(lambda: evolve(train_classifier, classification_config(args), generations, fitness_name,
                                sampler=sampler))
        return
    result = run_face(train_classifier, args)
    if "signal" in result:
        raise SystemExit(128 + result["signal"])
    if "top1" in result:
        print(f"top-1 accuracy {result['top1']:.4f}, top-5 {result['top5']:.4f}; results in {result['save_dir']}")


if __name__ == "__main__":
    main()
