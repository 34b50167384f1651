"""What one training step costs under each execution setting, side by side in one process, alternating.

    scripts/env.sh python benchmarks/training_step.py                     # space_depth_n and yolov5n at 256
    scripts/env.sh python benchmarks/training_step.py --sizes 256 640 --arms eager-bf16 compiled-bf16
    scripts/env.sh python benchmarks/training_step.py --profile eager-bf16  # where the step's time goes

A step is what the trainer does per batch: forward under the run's precision, the YOLO loss, backward, SGD.
Arms: eager or ``torch.compile`` (inductor) x fp32 or bf16 autocast x channels-last or contiguous memory.
Each arm gets its own fresh model with the same initial weights; the arms run in rounds, each round timing
every arm once (median of ``--steps`` steps), so a machine that slows down mid-run slows every arm alike.
A compiled arm's first calls (compilation) are timed apart and reported with the steps it takes to pay back.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.timing import synthetic_targets
from models.yolo import DetectionModel
from utils.detection.anchor_based_loss import LossGains, YoloLoss
from utils.precision import cpu_bf16_native, cpu_precision_line

ARMS = ("eager-fp32", "eager-bf16", "eager-bf16-contiguous", "compiled-fp32", "compiled-bf16")


@dataclass
class Arm:
    name: str
    step: Callable[[], None]
    compile_s: float = 0.0
    times: list[float] | None = None


def _make_arm(name: str, cfg: str, imgsz: int, batch: int, state: dict) -> Arm:
    compiled, precision = name.split("-")[0] == "compiled", name.split("-")[1]
    memory = torch.contiguous_format if name.endswith("contiguous") else torch.channels_last
    model = DetectionModel(f"{cfg}.yaml", nc=80).train()
    model.load_state_dict(state)
    model.to(memory_format=memory)
    loss_fn = YoloLoss(model.detect.anchors, 80, LossGains(), imgsz, strides=model.stride.tolist())
    images = torch.rand(batch, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    images = images.contiguous(memory_format=memory)
    targets = synthetic_targets(batch, 80)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    bf16 = precision == "bf16"

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs = forward(images)
        loss, _ = loss_fn(outputs, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    arm = Arm(name, step, times=[])
    start = time.perf_counter()
    step()  # the first step: compilation for a compiled arm, oneDNN's primitive set-up for an eager one
    step()
    arm.compile_s = time.perf_counter() - start
    return arm


def _profile(arm: Arm, steps: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            arm.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)


def study(cfg: str, imgsz: int, batch: int, arms: list[str], rounds: int, steps: int) -> list[str]:
    torch.manual_seed(0)
    state = DetectionModel(f"{cfg}.yaml", nc=80).state_dict()
    built = [_make_arm(name, cfg, imgsz, batch, state) for name in arms]
    for _ in range(rounds):
        for arm in built:
            per_step = []
            for _ in range(steps):
                start = time.perf_counter()
                arm.step()
                per_step.append(time.perf_counter() - start)
            arm.times.append(statistics.median(per_step))
    medians = {arm.name: statistics.median(arm.times) for arm in built}
    base = medians[built[0].name]
    lines = []
    for arm in built:
        median = medians[arm.name]
        spread = (max(arm.times) - min(arm.times)) / median
        note = ""
        eager = medians.get(arm.name.replace("compiled", "eager"))
        if arm.name.startswith("compiled") and eager is not None:
            note = f", first two steps {arm.compile_s:.0f} s"
            note += (f", pays back after {arm.compile_s / (eager - median):.0f} steps against eager"
                     if median < eager else ", never pays back against eager")
        lines.append(f"| {cfg} | {imgsz} | {arm.name} | {median * 1e3:.0f} | {batch / median:.1f} | "
                     f"{median / base:.2f} | ±{spread / 2 * 100:.0f} %{note} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cfgs", nargs="+", default=["space_depth_n", "yolov5n"])
    p.add_argument("--sizes", type=int, nargs="+", default=[256])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="steps per arm per round (their median is kept)")
    p.add_argument("--profile", choices=ARMS, help="print the top operators of this arm instead")
    args = p.parse_args()
    print(cpu_precision_line(), f"| torch {torch.__version__} | {torch.get_num_threads()} threads")
    if not cpu_bf16_native() and any("bf16" in a for a in args.arms):
        print("no native bf16 on this CPU: the bf16 arms are emulated")
    if args.profile:
        torch.manual_seed(0)
        cfg, imgsz = args.cfgs[0], args.sizes[0]
        state = DetectionModel(f"{cfg}.yaml", nc=80).state_dict()
        print(_profile(_make_arm(args.profile, cfg, imgsz, args.batch, state), args.steps))
        return
    print(f"| model | input | arm | ms per step (batch {args.batch}) | img/s | vs {args.arms[0]} | spread, notes |")
    print("|---|---:|---|---:|---:|---:|---|")
    for cfg in args.cfgs:
        for imgsz in args.sizes:
            print("\n".join(study(cfg, imgsz, args.batch, args.arms, args.rounds, args.steps)), flush=True)


if __name__ == "__main__":
    main()
