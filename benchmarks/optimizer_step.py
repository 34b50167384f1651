"""What one optimiser step costs as a Python loop over the tensors, as multi-tensor (foreach) kernels and as
PyTorch's fused kernel, side by side in one process, alternating, with how far each lands from the loop.

    scripts/env.sh python benchmarks/optimizer_step.py
    scripts/env.sh python benchmarks/optimizer_step.py --cfgs space_depth_s --optimizers SGD AdamW

Each form steps its own copy of the same model with the same gradients (the trainer's three parameter groups,
its nesterov SGD), so the weights after the timed steps can be compared tensor by tensor.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from models.yolo import DetectionModel
from utils.engine.optim import build_optimizer

FORMS = ("loop", "foreach", "fused")


def _optimizer(model: torch.nn.Module, name: str, form: str) -> torch.optim.Optimizer:
    optimizer = build_optimizer(model, name)
    for group in optimizer.param_groups:
        group["foreach"] = form == "foreach"
        group["fused"] = form == "fused"
    return optimizer


def study(cfg: str, name: str, rounds: int, steps: int) -> list[str]:
    torch.manual_seed(0)
    base = DetectionModel(f"{cfg}.yaml", nc=80)
    gradients = [torch.randn_like(p) * 1e-2 for p in base.parameters()]
    models = {form: copy.deepcopy(base) for form in FORMS}
    optimizers = {form: _optimizer(models[form], name, form) for form in FORMS}

    def set_gradients(form: str) -> None:  # the foreach form may reuse .grad as scratch space, so reset it
        for parameter, gradient in zip(models[form].parameters(), gradients):
            parameter.grad = gradient.clone()

    times: dict[str, list[float]] = {form: [] for form in FORMS}
    for form in FORMS:
        set_gradients(form)
        optimizers[form].step()  # momentum buffers created outside the timing
    for _ in range(rounds):
        for form in FORMS:
            per_step = []
            for _ in range(steps):
                set_gradients(form)
                start = time.perf_counter()
                optimizers[form].step()
                per_step.append(time.perf_counter() - start)
            times[form].append(statistics.median(per_step))
    loop_weights = list(models["loop"].parameters())
    lines = []
    for form in FORMS:
        median = statistics.median(times[form])
        differences = [(a - b).abs().max().item() for a, b in zip(loop_weights, models[form].parameters())]
        unequal = sum(d > 0 for d in differences)
        lines.append(f"| {cfg} | {name} | {form} | {median * 1e3:.2f} | "
                     f"{median / statistics.median(times['loop']):.2f} | "
                     f"{unequal} of {len(differences)}, largest {max(differences):.1e} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cfgs", nargs="+", default=["space_depth_n", "yolov5n"])
    p.add_argument("--optimizers", nargs="+", default=["SGD"], choices=["SGD", "Adam", "AdamW"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="steps per form per round (their median is kept)")
    args = p.parse_args()
    print(f"torch {torch.__version__} | {torch.get_num_threads()} threads | {args.rounds} rounds of "
          f"{args.steps} steps per form, alternating")
    print("| model | optimiser | form | ms per step | vs loop | tensors unequal to the loop's after all steps |")
    print("|---|---|---|---:|---:|---|")
    for cfg in args.cfgs:
        for name in args.optimizers:
            print("\n".join(study(cfg, name, args.rounds, args.steps)), flush=True)


if __name__ == "__main__":
    main()
