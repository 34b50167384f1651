"""Timing helpers shared by the benchmarks; also imported by the reference implementation's side
(reference_worker.py), so they depend on nothing but torch."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import torch


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


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def throughput(step: Callable[[], None], batch: int, steps: int, warmup: int = 1) -> float:
    """Images per second of a training ``step`` on ``batch`` images (median step time)."""
    return batch / median_ms(step, steps, warmup) * 1000


def synthetic_targets(batch: int, nc: int, per_image: int = 12, seed: int = 0) -> torch.Tensor:
    """Fixed (N, 6) training targets — image, class, cx, cy, w, h (normalised) — with COCO-like sizes."""
    g = torch.Generator().manual_seed(seed)
    n = batch * per_image
    image = torch.arange(batch).repeat_interleave(per_image).float()
    cls = torch.randint(0, nc, (n,), generator=g).float()
    wh = torch.exp(torch.empty(n, 2).uniform_(-4.5, -0.7, generator=g))  # 1 % to 50 % of the side
    cxy = wh / 2 + torch.rand(n, 2, generator=g) * (1 - wh)
    return torch.cat((image[:, None], cls[:, None], cxy, wh), 1)


def latency_figures(model: Callable[[torch.Tensor], object], x: torch.Tensor, repeats: int) -> dict:
    """Median batch latency of an inference model."""
    with torch.inference_mode():
        return {"ms": median_ms(lambda: model(x), repeats)}


def training_figures(model: torch.nn.Module, compute_loss: Callable, optimizer: torch.optim.Optimizer,
                     images: torch.Tensor, targets: torch.Tensor, steps: int) -> dict:
    """Images/s of forward + loss + backward + optimiser step, and the process's peak resident memory."""
    import resource

    def step() -> None:
        loss, _ = compute_loss(model(images), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return {"images_per_s": throughput(step, images.shape[0], steps),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def nms_figures(nms: Callable, predictions: str, repeats: int) -> dict:
    """ms per image of ``nms(prediction, conf, iou, multi_label=True, max_det=300)`` at validation settings
    on saved (B, N, 5 + nc) predictions, and how many boxes it keeps."""
    prediction = torch.load(predictions, weights_only=True)

    def run() -> list:
        return nms(prediction, 0.001, 0.6, multi_label=True, max_det=300)

    return {"ms_per_image": median_ms(run, repeats) / len(prediction), "boxes": sum(len(o) for o in run())}
