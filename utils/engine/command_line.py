"""Command-line options the training faces share; argparse only, so that --help stays instant."""

from __future__ import annotations

import argparse
import os

SPIN_BEFORE_SLEEP = "10000"  # libgomp's spins before an idle thread sleeps: about 0.1 ms (its default: 300000)


def prefer_sleeping_threads() -> None:
    """Idle OpenMP threads spin briefly, then sleep, unless the user chose ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``.

    Call before PyTorch loads: libgomp reads the variables once. ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once; what
    Intel's OpenMP reads) plus ``GOMP_SPINCOUNT=10000`` (libgomp's count, which overrides the policy). Spinning
    for long loses the core to a loader worker or another process and stalls every parallel operator (beside a
    training run one SGD step took 576-615 ms spinning, 6 ms sleeping); sleeping at once pays a wake-up for each
    of a step's thousands of small operators (the main job's 3 epochs: 29.0-30.3 s sleeping, 25.6-26.6 s with
    the brief spin). docs, benchmarks/time-per-phase.md, "Threads that wait".
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = SPIN_BEFORE_SLEEP


def add_execution_arguments(p: argparse.ArgumentParser) -> None:
    """--optimizer-kernel and --compile: how the same training arithmetic runs (train.py, classify/train.py)."""
    p.add_argument("--optimizer-kernel", default="auto", choices=["auto", "fused", "foreach", "loop"],
                   help="how an optimiser step runs (default auto: foreach, the loop's weights bit for bit; "
                        "fused: faster, within float rounding of them)")
    p.add_argument("--compile", action="store_true", help="train through torch.compile (inductor): about a "
                   "minute of compilation first; pays back only on long float32 runs (docs: time per phase)")


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
    choices = ("top1",) if default_fitness == "top1" else ("yolov5", "AP", "AP_S")  # this face's task's figures
    p.add_argument("--evolve-fitness", default=default_fitness, choices=choices, help="what --evolve maximises: "
                   "yolov5 (0.1 mAP50 + 0.9 mAP50-95), AP, AP_S (detection); top1 (classification)")
    p.add_argument("--evolve-sampler", default="tpe", choices=("tpe", "genetic"), help="how --evolve draws the "
                   "next hyp file: optuna's TPE (default; found 2.6x the genetic pick's AP_S on the embedded set, "
                   "docs/training.md) or yolov5's genetic mutation")
