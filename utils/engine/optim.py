"""Optimiser parameter groups, the learning-rate schedule, warm-up and the weights' EMA."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from utils.engine.config import OPTIMIZER_KERNELS as KERNELS
from utils.logging import LOGGER


def build_optimizer(model: nn.Module, name: str = "SGD", lr: float = 0.01, momentum: float = 0.937,
                    weight_decay: float = 5e-4, kernel: str = "auto") -> torch.optim.Optimizer:
    """Three parameter groups, in this order: 0 biases, 1 conv/linear weights (with weight decay),
    2 normalisation weights. Only group 1 is decayed; warm-up treats group 0 (biases) specially.

    ``kernel`` is how a step runs: ``foreach`` (multi-tensor kernels; what ``auto`` picks), ``fused`` (one
    kernel per group where PyTorch has one for the device) or ``loop`` (a Python loop per tensor, PyTorch's CPU
    default). foreach gives the loop's weights bit for bit; fused lands within float rounding of them (SGD's
    differs by one ulp in a few elements, Adam(W)'s by ~1e-6), so it is a choice, not the default."""
    if kernel not in KERNELS:
        raise ValueError(f"optimiser kernel {kernel!r}: choose one of {', '.join(KERNELS)}")
    biases, decay, no_decay = [], [], []
    norm_types = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))
    for module in model.modules():
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter) and bias.requires_grad:
            biases.append(bias)
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.requires_grad:
            (no_decay if isinstance(module, norm_types) else decay).append(weight)
    groups = [{"params": biases, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if name == "SGD":
        make = lambda **form: torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True, **form)  # noqa: E731
    elif name in ("Adam", "AdamW"):
        optimizer_type = getattr(torch.optim, name)
        make = lambda **form: optimizer_type(groups, lr=lr, betas=(momentum, 0.999), **form)  # noqa: E731
    else:
        raise ValueError(f"--optimizer {name}: choose SGD, Adam or AdamW")
    if kernel == "fused":
        try:
            return make(fused=True)
        except (RuntimeError, ValueError) as error:  # no fused kernel for this device or dtype
            raise ValueError(f"--optimizer-kernel fused: {error}") from None
    return make(foreach=kernel in ("auto", "foreach"))


AUTO_STEP_LIMIT = 10_000  # ultralytics' rule: AdamW up to this many optimiser steps, SGD beyond


def resolve_auto_optimizer(hyp: dict, images: int, batch_size: int, epochs: int, nc: int) -> str:
    """``optimizer: auto`` as ultralytics picks it, written into ``hyp`` (so checkpoints and resumes keep the
    choice): AdamW at lr 0.002 * 5 / (4 + nc), momentum 0.9 and no bias warm-up for runs of up to 10,000 steps
    (counted as ultralytics does, ceil(images / max(batch, nbs)) per epoch), else SGD at 0.01, momentum 0.9
    (where ultralytics 8.4 uses its Muon-SGD hybrid). Returns a line saying what was chosen."""
    steps = math.ceil(images / max(batch_size, int(hyp.get("nbs", 64)))) * epochs
    if steps > AUTO_STEP_LIMIT:
        hyp.update(optimizer="SGD", lr0=0.01, momentum=0.9)
    else:
        hyp.update(optimizer="AdamW", lr0=round(0.002 * 5 / (4 + nc), 6), momentum=0.9, warmup_bias_lr=0.0)
    return (f"optimizer auto: {hyp['optimizer']} lr0 {hyp['lr0']:g} momentum {hyp['momentum']:g} "
            f"({steps} steps {'>' if steps > AUTO_STEP_LIMIT else '<='} {AUTO_STEP_LIMIT:,}, {nc} classes)")


def choose_optimizer(name: str, hyp: dict, loader: Any, batch_size: int, epochs: int, nc: int,
                     quiet: bool = False) -> str:
    """The optimiser a run uses: ``name``, or for ``auto`` ultralytics' pick (:func:`resolve_auto_optimizer`
    over the training images of ``loader``, written into ``hyp``, logged); warns when an Adam-type optimiser
    meets an SGD-sized bias warm-up."""
    if name == "auto":  # resolved once into the hyp: checkpoints (and so resumes) keep the choice
        dataset = getattr(loader, "dataset", None)
        images = len(dataset) if dataset is not None else len(loader) * batch_size
        line = resolve_auto_optimizer(hyp, images, batch_size, epochs, nc)
        if not quiet:
            LOGGER.info(line)
        name = hyp["optimizer"]
    if not quiet and name != "SGD" and hyp["warmup_bias_lr"] > 10 * hyp["lr0"]:
        LOGGER.warning(f"warmup_bias_lr {hyp['warmup_bias_lr']} with {name}: Adam-type optimisers move every bias by "
                       f"about its lr per step, which wrecks a pretrained head; SGD's value does not carry over "
                       f"(hyp.quick.yaml uses 0.0)")
    return name


def keep_step_kernel(optimizer: torch.optim.Optimizer, saved_state: dict) -> None:
    """Load an optimiser state saved by another build (an older release, another device) and keep this
    optimiser's step form: ``load_state_dict`` would take the saved groups' fused/foreach flags too."""
    forms = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(saved_state)
    for group, form in zip(optimizer.param_groups, forms):
        group.update(form)


def lr_lambda(epochs: int, lrf: float, cosine: bool = True):
    """Multiplier of lr0 at an epoch: cosine (or linear) from 1 to ``lrf``."""
    if cosine:
        return lambda e: ((1 - math.cos(e * math.pi / epochs)) / 2) * (lrf - 1) + 1
    return lambda e: (1 - e / epochs) * (1.0 - lrf) + lrf


def warmup_iterations(hyp: dict, batches_per_epoch: int, epochs: int) -> int:
    """How many iterations the warm-up lasts. YOLOv5's rule (the default): max(warmup_epochs x batches, 100).
    Ultralytics' (hyp ``warmup: ultralytics``): warmup_epochs x batches, never into the run's last epoch."""
    if hyp["warmup_epochs"] <= 0:
        return 0
    if hyp.get("warmup", "yolov5") == "ultralytics":
        return round(min(hyp["warmup_epochs"], max(epochs - 1, 0)) * batches_per_epoch)
    return max(round(hyp["warmup_epochs"] * batches_per_epoch), 100)


def warmup(optimizer: torch.optim.Optimizer, iteration: int, warmup_iterations: int, epoch_lr: float,
           hyp: dict, lr0: float) -> None:
    """Linear warm-up: biases lr from warmup_bias_lr, other groups from 0, to the scheduled lr;
    momentum from warmup_momentum to momentum."""
    x = [0, warmup_iterations]
    for j, group in enumerate(optimizer.param_groups):
        start = hyp["warmup_bias_lr"] if j == 0 else 0.0
        group["lr"] = float(_interp(iteration, x, [start, lr0 * epoch_lr]))
        if "momentum" in group:
            group["momentum"] = float(_interp(iteration, x, [hyp["warmup_momentum"], hyp["momentum"]]))


def _interp(x: float, xp: list[float], fp: list[float]) -> float:
    if x <= xp[0]:
        return fp[0]
    if x >= xp[1]:
        return fp[1]
    return fp[0] + (fp[1] - fp[0]) * (x - xp[0]) / (xp[1] - xp[0])


class ModelEMA:
    """Exponential moving average of weights and buffers; decay ramps as 0.9999 (1 - exp(-updates / 2000))."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, updates: int = 0) -> None:
        self.ema = copy.deepcopy(model).eval()
        self.updates = updates
        self.decay_max, self.tau = decay, tau
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def decay(self) -> float:
        """This update's decay: ramps to ``decay`` as updates accumulate."""
        return self.decay_max * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the averaged weights towards ``model``'s."""
        self.updates += 1
        d = self.decay()
        averaged, current = self._tensors(model)
        # the same two operations per tensor as a loop of mul_/add_ (results equal bit for bit), in a few
        # multi-tensor kernels instead of ~700 Python-dispatched ones
        torch._foreach_mul_(averaged, d)
        torch._foreach_add_(averaged, current, alpha=1 - d)

    def _tensors(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The floating-point parameters and buffers of the average and of ``model``, paired by name; kept between
        steps until another model is passed (the Parameter objects themselves, so a ``.data`` swap by ``.to()``
        is still seen; buffers are updated in place by training)."""
        if getattr(self, "_pairs_for", None) is not model:
            source = model.state_dict(keep_vars=True)
            pairs = [(value, source[name]) for name, value in self.ema.state_dict(keep_vars=True).items()
                     if value.dtype.is_floating_point]
            self._pairs = ([a for a, _ in pairs], [c for _, c in pairs])
            self._pairs_for = model
        return self._pairs


def freeze_batchnorm_statistics(model: torch.nn.Module) -> None:
    """BatchNorm layers normalise with their running statistics and stop updating them (their affine
    weights still train). A fine-tuned model keeps the statistics it was trained with, and an SPD model made
    from a YOLOv5 computes in training what its source computes (batch statistics would also count the
    three new phase groups)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
