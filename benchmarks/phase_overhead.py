"""Cost of the per-phase time table against a training step, same process.

    scripts/env.sh python benchmarks/phase_overhead.py

Times many empty phases (enter + exit of PhaseTimer, as the training loop uses it, one level nested) and one
space_depth_n training step (batch 16, 256 px, forward + loss + backward + SGD) on the CPU, and prints the
share of a step that the seven phases a step records would cost.
"""

from __future__ import annotations

import time

import torch

from benchmarks.timing import median_ms
from models.yolo import DetectionModel
from utils.engine.phase_timer import PhaseTimer

PHASES_PER_STEP = 7  # data, forward, loss, plots, backward, optimiser + EMA (+ one spare)


def phase_cost_us(n: int = 200_000) -> float:
    timer = PhaseTimer()
    start = time.perf_counter()
    for _ in range(n // 2):
        with timer("forward"), timer("loss"):
            pass
    return (time.perf_counter() - start) / n * 1e6


def step_ms() -> float:
    torch.manual_seed(0)
    model = DetectionModel("space_depth_n.yaml", nc=80).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.rand(16, 3, 256, 256).contiguous(memory_format=torch.channels_last)

    def one_step() -> None:
        loss = sum(m.float().sum() for m in model(images)) * 1e-6
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return median_ms(one_step, repeats=3, warmup=1)


def main() -> None:
    torch.set_num_threads(2)
    per_phase = phase_cost_us()
    step = step_ms()
    share = PHASES_PER_STEP * per_phase / 1000 / step
    print(f"one phase (enter + exit): {per_phase:.2f} us; a space_depth_n step (batch 16, 256 px, CPU): "
          f"{step:.0f} ms; {PHASES_PER_STEP} phases per step cost {100 * share:.4f} % of it")


if __name__ == "__main__":
    main()
