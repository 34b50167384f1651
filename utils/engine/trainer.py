"""The training engine: one loop, in named phases, for every task.

    Trainer(config, task).run()
        setup()            run folder, hyper-parameters (the engine's keys and the task's), seeds,
                           task.build_model(), AutoBatch, task.build_data(), optimiser, schedule, EMA, resume
                           state, DDP, results log
        for each epoch:
            train_one_epoch()   warm-up, forward (task.forward_loss), backward, accumulation, EMA
            validate()          task.validate() on the EMA model (rank 0)
            save()              results.csv + TensorBoard row, last/best/periodic checkpoints, early stop
        finish()           results.png, task.finish() (e.g. the kept model's final figures)

A *task* (:class:`utils.engine.contract.Task`) supplies what is specific to a problem and sees the run only
through a :class:`utils.engine.contract.RunContext`; detection is :class:`utils.detection.task.DetectionTask`.
*Hooks* (:mod:`utils.engine.hooks`) observe named events without touching the loop: the ``hooks`` given
here, then the trackers of ``--loggers`` and the ``--callbacks`` named on the command line. DDP under
torchrun, exact resume and SIGINT / SIGTERM saves are the engine's, so every task has them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from utils import distributed as dist_utils
from utils import precision
from utils.checkpoints.files import model_payload, save_checkpoint
from utils.checkpoints.format import FORMAT
from utils.engine import autobatch
from utils.engine.compilation import training_model
from utils.engine.config import ENGINE_HYP, ConfigurationError, TrainConfig, load_hyp
from utils.engine.contract import LoopState, RunContext, Task
from utils.engine.hooks import Hook, HookList, hook_from_name
from utils.engine.optim import freeze_batchnorm_statistics
from utils.engine.optimisation import Optimisation
from utils.engine.phase_timer import PhaseTimer
from utils.engine.progress import EpochProgress
from utils.engine.results_log import ResultsLog
from utils.engine.run_folder import (
    RunFolder,
    elastic_restart,
    find_latest_last,
    mark_elastic_run,
    read_resumable,
    restarted_run,
    restore_rng_state,
    rng_state,
    strip_finished_last,
)
from utils.engine.signals import SignalFlag
from utils.faces import UserFacingError
from utils.logging import LOGGER, get_logger, increment_path

NOMINAL_BATCH = 64


class TrainingStopped(RuntimeError, UserFacingError):
    """Training cannot go on (non-finite loss); the last good checkpoint is kept."""


NOT_VALIDATED = -math.inf  # best_fitness before the first validation


class Trainer:
    """Runs ``task`` as ``config`` says; see the module docstring for the phases."""

    def __init__(self, config: TrainConfig, task: Task, hooks: list[Hook] | tuple = ()) -> None:
        missing = missing_task_members(task)
        if missing:
            raise TypeError(f"{type(task).__name__} is not a Task: it lacks {', '.join(missing)}")
        if config.task_options is None:
            config = TrainConfig.from_dict(config.to_dict(), task_options=task.options_class)
        elif not isinstance(config.task_options, task.options_class):
            raise ConfigurationError(f"{type(task).__name__} takes {task.options_class.__name__}, not "
                                     f"{type(config.task_options).__name__}")
        self.config, self.task = config, task
        named = [hook_from_name(name) for name in [*config.loggers, *config.callbacks]]
        self.hooks = HookList([*hooks, *named])
        self.result: dict = {}
        self.state = LoopState()
        self.run_folder = RunFolder()
        self.phases = PhaseTimer()  # where the run's time goes, tabled at the end
        # the run itself, filled in by setup(): where it runs, its folder and settings, its optimisation
        self.device: torch.device | None = None
        self.distributed, self.world, self.rank, self.main = False, 1, 0, True
        self.amp_dtype: torch.dtype | None = None
        self.nominal_batch = NOMINAL_BATCH
        self.save_dir = self.weights_dir = Path()
        self.hyp: dict = {}
        self.resume_state: dict | None = None
        self.results: ResultsLog | None = None
        self.context: RunContext | None = None
        self.opt: Optimisation | None = None
        self.train_model: torch.nn.Module | None = None
        self._started = 0.0

    # ----------------------------------------------------------------------------------------- run
    def run(self) -> dict:
        """Train; returns the final metrics, ``save_dir`` and, when a signal stopped it, ``signal``."""
        self._started = time.perf_counter()
        try:
            with self.phases("setup"):
                self.setup()
            self._loop()
            return self.finish()
        except BaseException as error:
            self.hooks.fire("on_failure", self.context, error)
            self.run_folder.discard_if_empty()
            raise
        finally:
            self.run_folder.release()

    def _loop(self) -> None:
        stop_flag = SignalFlag()
        try:
            self.hooks.fire("before_train", self.context)
            for epoch in range(self.state.start_epoch, self.epochs):
                self.state.epoch = epoch
                self.hooks.fire("on_epoch_start", self.context, epoch)
                if not self.train_one_epoch(epoch, stop_flag):
                    self.state.interrupted = stop_flag.raised
                    self._save_interrupted(epoch)
                    break
                self.validate(epoch)
                stop = self.save(epoch)
                self.hooks.fire("after_epoch", self.context)
                if stop:
                    break
        finally:
            stop_flag.restore()
            self.results.close()

    # --------------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        """Everything before the first step, in an order that keeps seeded runs identical."""
        self.device = dist_utils.select_device(self.config.device)
        self.phases.sync_cuda = self.device.type == "cuda"
        self.distributed = dist_utils.init_distributed(self.device)
        self.world, self.rank = dist_utils.world_size(), dist_utils.rank()
        self.main = self.rank == 0
        get_logger(verbose=self.main)  # other ranks stay quiet
        self._open_run()
        seed = int(self.config.seed) + self.rank
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        if self.config.batch_size == -1:
            autobatch.require_cuda(self.device, self.distributed)
        elif self.config.batch_size % self.world:
            raise ValueError(f"--batch-size {self.config.batch_size} must be a multiple of the {self.world} "
                             f"processes")
        self.amp_dtype = precision.autocast_dtype(self.device, enabled=not self.config.no_amp)
        self.nominal_batch = int(self.hyp.get("nbs", NOMINAL_BATCH))
        self.results = ResultsLog(self.save_dir, self.task.csv_keys, enabled=self.main)
        self.context = RunContext(
            config=self.config, hyp=self.hyp, device=self.device, rank=self.rank, world=self.world,
            distributed=self.distributed, save_dir=self.save_dir, resume_state=self.resume_state,
            amp_dtype=self.amp_dtype, nominal_batch=self.nominal_batch, phases=self.phases, results=self.results,
            progress=self.state)
        self.task.build_model(self.context)
        self.context.model = self.task.model
        self._resolve_batch_size()
        self.task.build_data(self.context, self.batch_size)
        self._setup_optimisation()
        self._setup_logs()

    def _open_run(self) -> None:
        """The run folder, resumed or new, and the hyper-parameters (read back when resuming)."""
        config = self.config
        self.resume_state = None
        restarted = None if config.resume else restarted_run(Path(config.project))
        if restarted is not None:  # torchrun restarted this job's workers: continue its own run folder
            last = restarted / "weights" / "last.pt"
            LOGGER.info(f"torchrun restart {elastic_restart()}: continuing {restarted}" +
                        ("" if last.is_file() else " from the start (no epoch had finished)"))
            if last.is_file():
                config = self.config = config.replace(resume=str(last))
            else:
                config = self.config = config.replace(name=restarted.name, exist_ok=True)
        if config.resume:
            last = Path(config.resume) if isinstance(config.resume, str) else find_latest_last(Path(config.project))
            self.resume_state = read_resumable(last)
            saved = TrainConfig.from_dict(self.resume_state["options"], str(last), strict=False,
                                          task_options=self.task.options_class)
            saved.resume, saved.device = str(last), config.device
            saved.resume_changed_data = config.resume_changed_data
            saved.keep_optimizer = saved.keep_optimizer or config.keep_optimizer
            # hooks come from this command line, never from the checkpoint (loading one runs no code)
            saved.loggers, saved.callbacks = config.loggers, config.callbacks
            if config.epochs is not None:
                saved.epochs = config.epochs
            self.config = config = saved
            self.save_dir = last.parent.parent
            LOGGER.info(f"resuming {last} from epoch {self.resume_state['epoch'] + 1} of {self.epochs}")
        else:
            self.save_dir = increment_path(Path(config.project) / config.name, exist_ok=config.exist_ok,
                                           mkdir=False)
        self.weights_dir = self.save_dir / "weights"
        schema = ENGINE_HYP | self.task.hyp_schema
        self.hyp = dict(self.resume_state["hyp"]) if self.resume_state else load_hyp(config.hyp, schema)
        self.run_folder.open(self.save_dir, self.main)
        if self.main:
            mark_elastic_run(self.save_dir)  # under torchrun: its restarts find this folder
        if self.main:
            (self.save_dir / "hyp.yaml").write_text(yaml.safe_dump(self.hyp, sort_keys=False))
            (self.save_dir / "opt.yaml").write_text(yaml.safe_dump(self._saved_options(), sort_keys=False))

    @property
    def batch_size(self) -> int:
        """This process's batch: the total divided among the processes."""
        return self.config.batch_size // self.world

    def _resolve_batch_size(self) -> None:
        """``--batch-size -1``: AutoBatch measures the task's model at its size (recorded in opt.yaml and in
        checkpoints, so a resume keeps it)."""
        if self.config.batch_size != -1:
            return
        self.config.batch_size = autobatch.auto_batch_size(self.task.model, self.task.imgsz, self.device,
                                                           amp=not self.config.no_amp)
        if self.main:
            (self.save_dir / "opt.yaml").write_text(yaml.safe_dump(self._saved_options(), sort_keys=False))

    @property
    def epochs(self) -> int:
        """The run's total number of epochs."""
        return self.config.total_epochs

    def _saved_options(self) -> dict:
        options = self.config.to_dict()
        options.update(epochs=self.epochs)
        options.pop("resume", None)
        return options

    def _setup_optimisation(self) -> None:
        self.opt = Optimisation.build(self.task.model, self.hyp, self.config, self.task.train_loader, self.state,
                                      self.amp_dtype, self.nominal_batch, self.main)
        if self.main:
            LOGGER.info(precision.precision_line(self.device, self.amp_dtype, self.config.no_amp))
        if self.resume_state is not None:
            self._restore(self.resume_state)
        self.opt.scheduler.last_epoch = self.state.start_epoch - 1
        self.train_model = training_model(self.task.model, self.config, self.device, self.distributed,
                                          self.amp_dtype)

    def _restore(self, ckpt: dict) -> None:
        self.opt.restore(ckpt, str(self.config.resume))
        state = self.state
        state.start_epoch = state.best_epoch = int(ckpt["epoch"]) + 1
        state.best_fitness = float(ckpt["best_fitness"])
        state.last_step = int(ckpt.get("last_step", -1))
        restore_rng_state(ckpt.get("rng", {}))
        if state.start_epoch >= self.epochs:
            raise ValueError(f"{self.config.resume}: already trained {state.start_epoch} epochs; "
                             f"add --epochs N (N > {state.start_epoch}) to extend it")

    def _setup_logs(self) -> None:
        self.results.start(None if self.resume_state is None else self.state.start_epoch)
        if self.main and self.config.val_first and self.resume_state is None:
            self._validate_start()

    def _validate_start(self) -> None:
        """Where the starting weights stand (a pretrained model's figure), as row "-1" of results.csv."""
        rng = rng_state()  # loaders draw worker seeds: keep the run identical to one without this
        metrics = self.task.validate(self.opt.ema.ema, self.context)
        restore_rng_state(rng)
        if metrics:
            LOGGER.info(f"before training: {self.task.describe(metrics)}")
            nan_loss = torch.full((len(self.task.loss_names) or 1,), math.nan)
            lrs = [math.nan] * len(self.opt.optimizer.param_groups)
            self.results.row(-1, self.task.results_row(nan_loss, metrics, lrs))

    # ---------------------------------------------------------------------------------- one epoch
    def train_one_epoch(self, epoch: int, stop_flag: SignalFlag) -> bool:
        """One pass over the training data; False when a signal asked to stop."""
        self.train_model.train()
        if self.hyp.get("freeze_bn_stats", False):
            freeze_batchnorm_statistics(self.task.model)
        loader = self.task.train_loader
        loader.set_epoch(epoch)  # re-seeds the DistributedSampler and the augmentations
        self.state.mean_loss = None
        self.opt.optimizer.zero_grad(set_to_none=True)
        batches = iter(loader)
        columns = ["epoch", "memory", *self.task.loss_names, "images"]
        bar = EpochProgress(len(loader), columns, enabled=self.main)
        try:
            for i in range(len(loader)):
                with self.phases("data"):
                    batch = next(batches)
                self.step(epoch, i, len(loader), batch, bar)
                self.hooks.fire("after_step", self.context, i, batch)
                if stop_flag.raised is not None:
                    return False
        finally:
            bar.close()
        self.opt.end_epoch(self.state)
        return True

    def step(self, epoch: int, i: int, nb: int, batch: Any, bar: EpochProgress) -> None:
        """Forward, backward and (every ``accumulate`` batches) an optimiser step with EMA update."""
        state, step = self.state, i + nb * epoch
        state.batch_index = i
        self.opt.warm_up(step, epoch, state)
        with self.phases("forward"), precision.autocast(self.device, self.amp_dtype):
            loss, items, size = self.task.forward_loss(self.train_model, batch, self.context)
        if not torch.isfinite(loss):
            raise TrainingStopped(f"non-finite loss ({loss.item()}) at epoch {epoch}, batch {i}: training stopped; "
                                  f"{self.weights_dir / 'last.pt'} still holds the last good epoch. Lower lr0 or "
                                  f"check the labels")
        if self.distributed:
            loss = loss * self.world  # DDP averages gradients over processes
        with self.phases("backward"):
            self.opt.scaler.scale(loss).backward()
        if step - state.last_step >= state.accumulate:
            with self.phases("optimiser + EMA"):
                self.opt.step(self.task.model)
            state.last_step = step
        state.mean_loss = items if state.mean_loss is None else (state.mean_loss * i + items) / (i + 1)
        if self.main:
            mem = f"{torch.cuda.memory_reserved() / 1e9:.2f}G" if self.device.type == "cuda" else "cpu"
            bar.update([f"{epoch + 1}/{self.epochs}", mem, *(f"{v:.4f}" for v in state.mean_loss.tolist()),
                        str(size)])

    # ---------------------------------------------------------------------------- validate, save
    def validate(self, epoch: int) -> None:
        """The EMA model's metrics (rank 0): every --val-period epochs and after the last (only then with
        --noval)."""
        final = epoch + 1 == self.epochs
        due = not self.config.noval and (epoch + 1) % self.config.val_period == 0
        if self.main and (due or final):
            self.state.metrics = self.task.validate(self.opt.ema.ema, self.context)
        else:
            self.state.metrics = {}
        if self.state.metrics:
            LOGGER.info(f"  val: {self.task.describe(self.state.metrics)}")
            self.hooks.fire("after_validation", self.context, epoch, self.state.metrics)

    def save(self, epoch: int) -> bool:
        """Log the epoch, write checkpoints (rank 0); True when training should stop early."""
        state, config = self.state, self.config
        stop = False
        if self.main:
            values = self.task.results_row(state.mean_loss, state.metrics, state.lrs)
            self.results.row(epoch, values)
            state.row = {"epoch": epoch, **dict(zip(self.task.csv_keys, values))}
            # an epoch without validation replaces best.pt only while nothing has been validated (--noval)
            improved = (self.task.fitness(state.metrics) > state.best_fitness if state.metrics
                        else state.best_fitness == NOT_VALIDATED)
            if improved:
                state.best_epoch = epoch
                if state.metrics:
                    state.best_fitness = self.task.fitness(state.metrics)
            if not config.nosave or epoch + 1 == self.epochs:
                with self.phases("checkpoints"):
                    self._write_epoch_checkpoints(epoch, improved)
            if config.patience and epoch - state.best_epoch >= config.patience:
                LOGGER.info(f"early stop: no improvement for {config.patience} epochs (best epoch "
                            f"{state.best_epoch + 1})")
                stop = True
        if self.distributed:
            stop = dist_utils.broadcast_flag(stop, self.device)
        return stop

    def _write_epoch_checkpoints(self, epoch: int, improved: bool) -> None:
        self.write_checkpoint(self.weights_dir / "last.pt", epoch, kind="last")
        if improved:
            self.write_checkpoint(self.weights_dir / "best.pt", epoch, kind="best")
        if self.config.save_period > 0 and (epoch + 1) % self.config.save_period == 0:
            self.write_checkpoint(self.weights_dir / f"epoch{epoch + 1}.pt", epoch, kind="periodic")

    def _save_interrupted(self, epoch: int) -> None:
        if self.main:  # keep what this epoch learned; resume restarts this epoch
            self.write_checkpoint(self.weights_dir / "last.pt", epoch - 1, partial=True, kind="interrupted")
            LOGGER.info(f"signal {self.state.interrupted}: saved {self.weights_dir / 'last.pt'}, exiting")

    def write_checkpoint(self, path: Path, completed_epoch: int, partial: bool = False, kind: str = "") -> None:
        """The full training state (weights_only-loadable): exact resume from it. ``kind`` (last, best,
        periodic, interrupted) is passed to the hooks' after_checkpoint."""
        ema = self.opt.ema
        save_checkpoint({
            "format": FORMAT,
            "model": model_payload(self.task.model),
            "ema": {k: v.detach().cpu() for k, v in ema.ema.state_dict().items()} if ema else None,
            "ema_updates": ema.updates if ema else 0,
            **self.opt.state_dicts(),
            "epoch": completed_epoch,
            "partial_epoch": partial,
            "last_step": self.state.last_step,
            "best_fitness": float(self.state.best_fitness),
            "rng": rng_state(),
            "options": self._saved_options(),
            "hyp": self.hyp,
            **self.task.checkpoint_extras(),
        }, path)
        if kind:
            self.hooks.fire("after_checkpoint", self.context, path, kind)

    # -------------------------------------------------------------------------------------- finish
    def finish(self) -> dict:
        """results.png and the task's closing work (rank 0), unless a signal stopped the run."""
        state = self.state
        out: dict = {}
        if self.main and state.interrupted is None:
            from utils.plots import plot_results

            if not self.config.noplots:
                with self.phases("plots"):
                    plot_results(self.results.csv)
            strip_finished_last(self.weights_dir / "last.pt", self.config.keep_optimizer)
            with self.phases("final evaluation"):
                out = self.task.finish(self.context)
            LOGGER.info(f"{state.epoch - state.start_epoch + 1} epochs completed; results in {self.save_dir}")
            self._report_phases()
        metrics = out or state.metrics
        result = {"save_dir": str(self.save_dir), **{k: v for k, v in metrics.items() if k != "curves"}}
        if getattr(self, "opt", None) is not None:  # the schedule, for callers comparing runs (evolve)
            result["schedule"] = {"warmup_iterations": self.opt.warmup_iters,
                                  "iterations": len(self.task.train_loader) * self.epochs}
        if state.interrupted is not None:
            result["signal"] = int(state.interrupted)  # train.py exits 128 + signal, as a shell does
        self.result = self.context.result = result
        self.hooks.fire("after_train", self.context)
        dist_utils.cleanup_distributed()
        return result


    def _report_phases(self) -> None:
        table = self.phases.table(time.perf_counter() - self._started)
        LOGGER.info(table)
        (self.save_dir / "time_per_phase.txt").write_text(table + "\n")


# ---------------------------------------------------------------------------------------- helpers
def missing_task_members(task: object) -> list[str]:
    """The protocol members a task object lacks before setup (model, imgsz and train_loader come from setup)."""
    later = {"model", "imgsz", "train_loader"}
    members = [name for name in Task.__annotations__ if name not in later]
    members += [name for name, value in vars(Task).items() if callable(value) and not name.startswith("_")]
    return [name for name in members if not hasattr(task, name)]
