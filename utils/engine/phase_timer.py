"""Where a training run's time goes: wall time per named phase, printed as a table at the end of the run.

    timer = PhaseTimer()
    with timer("forward"):
        with timer("loss"):      # nested: the loss's time is taken out of the forward's
            ...
    print(timer.table(total_seconds))

Each phase costs two ``time.perf_counter()`` calls (about 0.2 µs); on CUDA the device is synchronised at
phase boundaries, so a phase's time is the device work it queued, not just the launch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# The order phases are listed in (others follow by time spent).
PHASE_ORDER = ("setup", "data", "forward", "loss", "backward", "optimiser + EMA", "val data", "val inference",
               "NMS", "val metrics + COCO", "plots", "checkpoints", "final evaluation")


class PhaseTimer:
    """Exclusive wall time per phase name; ``enabled=False`` makes every phase a no-op."""

    def __init__(self, device: torch.device | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.sync_cuda = device is not None and device.type == "cuda"
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []  # [name, time the phase (re)started]

    def _now(self) -> float:
        if self.sync_cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        now = self._now()
        if self._stack:  # pause the enclosing phase
            outer = self._stack[-1]
            self.totals[outer[0]] += now - outer[1]
        self._stack.append([name, now])
        try:
            yield
        finally:
            now = self._now()
            _, started = self._stack.pop()
            self.totals[name] += now - started
            if self._stack:
                self._stack[-1][1] = now

    def table(self, wall_seconds: float) -> str:
        """Seconds and share of ``wall_seconds`` per phase, the unaccounted rest as 'other'."""
        ranked = sorted(self.totals, key=lambda k: (PHASE_ORDER.index(k) if k in PHASE_ORDER else len(PHASE_ORDER),
                                                    -self.totals[k]))
        rows = [(name, self.totals[name]) for name in ranked if self.totals[name] > 0]
        rows.append(("other", max(wall_seconds - sum(self.totals.values()), 0.0)))
        width = max(len(name) for name, _ in rows)
        lines = [f"time per phase ({wall_seconds:.1f} s in all):"]
        lines += [f"  {name:<{width}} {seconds:9.1f} s {100 * seconds / max(wall_seconds, 1e-9):5.1f} %"
                  for name, seconds in rows]
        return "\n".join(lines)


NO_TIMER = PhaseTimer(enabled=False)
