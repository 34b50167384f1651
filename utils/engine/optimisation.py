"""What a run's optimisation holds and does, in one object: the optimiser (``optimizer: auto`` resolved), the
learning-rate schedule, warm-up, gradient accumulation to the nominal batch, the AMP scaler, clipping and the
weights' EMA; built from the hyp file, restored from a checkpoint, stepped by the training loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from utils.engine.config import TrainConfig
from utils.engine.contract import LoopState
from utils.engine.optim import (
    ModelEMA,
    build_optimizer,
    choose_optimizer,
    keep_step_kernel,
    lr_lambda,
    warmup,
    warmup_iterations,
)
from utils.logging import LOGGER

MAX_GRADIENT_NORM = 10.0


@dataclass
class Optimisation:
    """The optimiser and everything that moves with it; ``ema`` is None on ranks other than 0."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    lf: Any  # epoch -> multiplier of lr0
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    hyp: dict
    warmup_iters: int
    accumulate_target: float  # where the warm-up's accumulation ramp ends

    @classmethod
    def build(cls, model: torch.nn.Module, hyp: dict, config: TrainConfig, loader: Any, state: LoopState,
              amp_dtype: torch.dtype | None, nominal_batch: int, main: bool) -> Optimisation:
        """From the hyp file and the options; sets ``state.accumulate`` (batches per optimiser step)."""
        epochs, batches = config.total_epochs, len(loader)
        state.accumulate = max(round(nominal_batch / config.batch_size), 1)
        weight_decay = hyp["weight_decay"] * config.batch_size * state.accumulate / nominal_batch
        target = nominal_batch / config.batch_size
        if hyp.get("warmup") == "ultralytics":  # no 100-iteration ramp: a run shorter than one accumulation steps
            state.accumulate = min(state.accumulate, batches * epochs)
            target = state.accumulate
        name = choose_optimizer(config.optimizer or hyp.get("optimizer", "SGD"), hyp, loader, config.batch_size,
                                epochs, int(getattr(model, "nc", 10)), quiet=not main)
        optimizer = build_optimizer(model, name, hyp["lr0"], hyp["momentum"], weight_decay,
                                    kernel=config.optimizer_kernel)
        lf = lr_lambda(epochs, hyp["lrf"], cosine=not config.linear_lr and hyp.get("schedule") != "linear")
        return cls(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf), lf,
                   torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16),  # bf16 needs none
                   ModelEMA(model) if main else None, hyp, warmup_iterations(hyp, batches, epochs), target)

    def restore(self, ckpt: dict, source: str) -> None:
        """The optimiser, scaler and EMA of a resumed last.pt (``source`` names it in the log)."""
        if ckpt.get("optimizer"):
            keep_step_kernel(self.optimizer, ckpt["optimizer"])
        else:  # a finished run's last.pt: its optimiser state was stripped
            LOGGER.info(f"{source}: a finished run (optimiser state stripped): weights, EMA and schedule "
                        f"continue, SGD momentum starts again from zero")
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None and ckpt.get("ema"):
            self.ema.ema.load_state_dict(ckpt["ema"])
            self.ema.updates = int(ckpt["ema_updates"])

    def warm_up(self, step: int, epoch: int, state: LoopState) -> None:
        """During warm-up: the learning rates and momentum of ``step``, and the accumulation ramp from 1."""
        if self.warmup_iters and step <= self.warmup_iters:
            warmup(self.optimizer, step, self.warmup_iters, self.lf(epoch), self.hyp, self.hyp["lr0"])
            state.accumulate = max(1, round(np.interp(step, [0, self.warmup_iters], [1, self.accumulate_target])))

    def step(self, model: torch.nn.Module) -> None:
        """Unscale, clip the gradient norm at 10, step, clear the gradients, update the EMA."""
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_GRADIENT_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(model)

    def end_epoch(self, state: LoopState) -> None:
        """Record the epoch's learning rates, then move the schedule on."""
        state.lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.scheduler.step()

    def state_dicts(self) -> dict:
        """What a resumable checkpoint keeps of the optimisation."""
        return {"optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None}
