"""What the engine and a task promise each other: the task protocol, the run context a task is given, and
(the hooks that observe the loop are in :mod:`utils.engine.hooks`).

A task sees the run only through a :class:`RunContext` (never the Trainer). The engine calls, in order:

    task.build_model(ctx)          data definitions, the model on ctx.device; sets task.model and task.imgsz
    (AutoBatch, if --batch-size -1, measures task.model at task.imgsz)
    task.build_data(ctx, batch)    loaders for this process's batch, loss, evaluator; sets task.train_loader
    per step: task.forward_loss(model, batch, ctx)
    per validation: task.validate(model, ctx), task.fitness(metrics), task.describe(metrics)
    per epoch: task.results_row(...), task.checkpoint_extras()
    at the end: task.finish(ctx)

**Loss scale.** ``forward_loss`` returns the loss to back-propagate for one batch. The engine sums the gradients
of ``accumulate`` batches (about ``nbs`` images, 64 by default) before each optimiser step, multiplies the loss by
the world size under DDP (DDP averages gradients), and scales weight decay by ``batch * accumulate / nbs``.
Detection returns yolov5's sum over the batch (per-image mean loss times the batch size); classification returns
the mean over the nominal batch (``mean * batch / nbs``). Either way the learning rates of a hyp file refer to that
scale, which is why hyp files are per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from utils.engine.config import HypSchema, TrainConfig
from utils.engine.phase_timer import PhaseTimer
from utils.engine.results_log import ResultsLog


@dataclass
class LoopState:
    """What changes while training (and is saved for an exact resume)."""

    start_epoch: int = 0
    epoch: int = 0
    best_fitness: float = -math.inf  # not validated yet
    best_epoch: int = 0
    last_step: int = -1  # global batch index of the last optimiser step
    batch_index: int = 0  # within the epoch
    accumulate: int = 1
    mean_loss: torch.Tensor | None = None
    metrics: dict = field(default_factory=dict)
    lrs: list[float] = field(default_factory=list)
    interrupted: int | None = None  # the signal that stopped the run
    row: dict = field(default_factory=dict)  # the last results.csv row, column -> value


@dataclass
class RunContext:
    """The run as a task sees it. ``progress`` is the engine's loop state: read it, never write it."""

    config: TrainConfig
    hyp: dict
    device: torch.device
    rank: int
    world: int
    distributed: bool
    save_dir: Path
    resume_state: dict | None  # the last.pt being resumed, else None
    amp_dtype: torch.dtype | None  # autocast dtype of training steps (None: fp32)
    nominal_batch: int  # images per optimiser step (hyp 'nbs', 64 by default)
    phases: PhaseTimer
    results: ResultsLog  # results.csv and TensorBoard (rank 0; add_image for pictures)
    progress: LoopState
    model: torch.nn.Module | None = None  # the task's model (unwrapped), once built
    result: dict = field(default_factory=dict)  # the final metrics, once the run has finished

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs, validates and writes files."""
        return self.rank == 0

    @property
    def weights_dir(self) -> Path:
        """Where the run's checkpoints go."""
        return self.save_dir / "weights"

    @property
    def options(self) -> Any:
        """The task's own options (``config.task_options``)."""
        return self.config.task_options


@runtime_checkable
class Task(Protocol):
    """What the engine asks of a problem (detection, classification ...); every member is used by the engine."""

    options_class: type  # the dataclass of the task's own options (TrainConfig.task_options)
    hyp_schema: HypSchema  # the task's hyp-file keys, checked together with the engine's
    csv_keys: list[str]  # results.csv columns after "epoch"
    loss_names: tuple[str, ...]  # the per-term losses forward_loss returns, in order
    model: torch.nn.Module  # set by build_model(); the unwrapped model (no DDP)
    imgsz: int  # set by build_model(): the training size, rounded to the model's stride
    train_loader: Any  # set by build_data(): batches, with set_epoch(epoch) and len()

    def build_model(self, ctx: RunContext) -> None:
        """The model (new, from --weights or from ctx.resume_state) on ctx.device, and ``imgsz``."""

    def build_data(self, ctx: RunContext, batch_size: int) -> None:
        """Loaders for this process's ``batch_size``, the loss and the evaluator."""

    def forward_loss(self, model: torch.nn.Module, batch: Any, ctx: RunContext
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(loss to back-propagate (see the loss scale above), per-term losses for logs, batch size)."""

    def validate(self, model: torch.nn.Module, ctx: RunContext) -> dict:
        """Metrics of ``model`` (rank 0 only); {} when there is nothing to validate on."""

    def fitness(self, metrics: dict) -> float:
        """The number best.pt maximises."""

    def results_row(self, mean_loss: torch.Tensor, metrics: dict, lrs: list[float]) -> list[Any]:
        """The values of csv_keys for one epoch."""

    def describe(self, metrics: dict) -> str:
        """One log line of metrics."""

    def checkpoint_extras(self) -> dict:
        """Task data saved in every checkpoint (e.g. the dataset fingerprint resume checks)."""

    def finish(self, ctx: RunContext) -> dict:
        """Closing work on rank 0 (e.g. best.pt slimmed and evaluated); returns the final metrics."""

