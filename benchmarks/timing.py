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


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1, cuda: bool = False) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls; with ``cuda`` each call
    ends when the GPU has finished its work (the time a caller waits for the result)."""

    def call() -> None:
        fn()
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def throughput(step: Callable[[], None], batch: int, steps: int, warmup: int = 1, cuda: bool = False) -> float:
    """Images per second of a training ``step`` on ``batch`` images (median step time)."""
    return batch / median_ms(step, steps, warmup, cuda) * 1000


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
    """Median batch latency of an inference model (on a GPU: until its output is ready)."""
    with torch.inference_mode():
        return {"ms": median_ms(lambda: model(x), repeats, warmup=3 if x.is_cuda else 1, cuda=x.is_cuda)}


def training_figures(model: torch.nn.Module, compute_loss: Callable, optimizer: torch.optim.Optimizer,
                     images: torch.Tensor, targets: torch.Tensor, steps: int, amp: bool = False,
                     bf16: bool = False) -> dict:
    """Images/s of forward + loss + backward + optimiser step (under autocast and a gradient scaler with
    ``amp``, as both trainers do on CUDA; under bf16 autocast with ``bf16``, as ours does on CPUs with native
    bf16), and peak memory: the process's resident set, and on a GPU the
    most memory PyTorch's allocator held."""
    import resource

    cuda = images.is_cuda
    scaler = torch.amp.GradScaler(images.device.type, enabled=amp)

    def step() -> None:
        with torch.autocast(images.device.type, enabled=amp or bf16, dtype=torch.bfloat16 if bf16 else None):
            loss, _ = compute_loss(model(images), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    figures = {"images_per_s": throughput(step, images.shape[0], steps, warmup=3 if cuda else 1, cuda=cuda),
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if cuda:
        figures["peak_cuda_mb"] = torch.cuda.max_memory_reserved() / 2**20
    return figures


def nms_figures(nms: Callable, predictions: str, repeats: int, device: str = "cpu") -> dict:
    """ms per image of ``nms(prediction, conf, iou, multi_label=True, max_det=300)`` at validation settings
    on saved (B, N, 5 + nc) predictions, and how many boxes it keeps."""
    prediction = torch.load(predictions, weights_only=True, map_location=device)

    def run() -> list:
        return nms(prediction, 0.001, 0.6, multi_label=True, max_det=300)

    return {"ms_per_image": median_ms(run, repeats, cuda=prediction.is_cuda) / len(prediction),
            "boxes": sum(len(o) for o in run())}
