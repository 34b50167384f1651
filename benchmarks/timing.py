"""Throughput timing shared by the benchmarks (also run inside the reference implementation's environment)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def images_per_second(loader: Iterable, passes: int, before_pass: Callable[[int], None] | None = None) -> float:
    """Images per second over ``passes`` passes of a loader yielding (images, ...); the first batch
    (worker start-up) is not timed."""
    n, t0, seen = 0, 0.0, 0
    for p in range(passes):
        if before_pass is not None:
            before_pass(p)
        for images, *_ in loader:
            seen += 1
            if seen == 1:
                t0 = time.perf_counter()
                continue
            n += images.shape[0]
    return n / (time.perf_counter() - t0)
