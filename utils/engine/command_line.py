"""Command-line options the training faces share; argparse only, so that --help stays instant."""

from __future__ import annotations

import argparse
import os


def prefer_sleeping_threads() -> None:
    """Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose a policy.

    Call before PyTorch loads: libgomp reads the variable once. Spinning threads that lose their core to a loader
    worker or another process stall every parallel operator; measured on 2 cores beside a training run, one
    yolov5n SGD step took 576-615 ms spinning and 6 ms sleeping, a batch-16 training step 1652 against 914 ms.
    On a quiet machine the two policies time alike (README, "Threads that wait").
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def add_execution_arguments(p: argparse.ArgumentParser) -> None:
    """--optimizer-kernel and --compile: how the same training arithmetic runs (train.py, classify/train.py)."""
    p.add_argument("--optimizer-kernel", default="auto", choices=["auto", "fused", "foreach", "loop"],
                   help="how an optimiser step runs (default auto: foreach, the loop's weights bit for bit; "
                        "fused: faster, within float rounding of them)")
    p.add_argument("--compile", action="store_true", help="train through torch.compile (inductor): about a "
                   "minute of compilation first; pays back only on long float32 runs (README, 'torch.compile')")


def add_tracking_arguments(p: argparse.ArgumentParser, default_fitness: str = "yolov5") -> None:
    """--loggers, --callbacks and --evolve, as train.py and classify/train.py take them."""
    p.add_argument("--loggers", nargs="+", default=None, metavar="NAME", help="experiment trackers: mlflow, "
                   "wandb, clearml, comet (optional extras; each honours its own offline mode and costs one warning "
                   "line, never the run, when it cannot start)")
    p.add_argument("--callbacks", nargs="+", default=None, metavar="MODULE:NAME", help="hooks from your own "
                   "code: package.module:Name, a Hook class or a factory (utils/engine/hooks.py lists the events)")
    p.add_argument("--evolve", type=int, nargs="?", const=300, default=None, metavar="N", help="evolve the hyp "
                   "file over N generations of this training run (default 300): evolve.csv, hyp_evolve.yaml, "
                   "evolve.png in --project/--name")
    p.add_argument("--evolve-fitness", default=default_fitness, help="what --evolve maximises: yolov5 (0.1 mAP50 + "
                   "0.9 mAP50-95), AP, AP_S (detection); top1 (classification)")
    p.add_argument("--evolve-sampler", default="tpe", choices=("tpe", "genetic"), help="how --evolve draws the "
                   "next hyp file: optuna's TPE (default; found 2.6x the genetic pick's AP_S on the embedded set, "
                   "README) or yolov5's genetic mutation")
