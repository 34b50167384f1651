"""Hooks: objects that observe the training loop at named events without touching it.

Every event receives the :class:`~utils.engine.trainer.Trainer`; its ``state`` (a LoopState: epoch, metrics,
the last results row ...), ``config``, ``hyp``, ``save_dir`` and ``main`` (rank 0) are what hooks read.
Hooks run on every process; one that logs or writes files should act only where ``trainer.main`` is true.

Events, in the order a run fires them:

    before_train(trainer)                      setup done: model, data, optimiser, run folder exist
    on_epoch_start(trainer, epoch)             before the first batch of ``epoch`` (0-based)
    after_step(trainer, batch_index, batch)    after each batch's forward/backward (and optimiser step)
    after_validation(trainer, epoch, metrics)  rank 0, after each validation: the task's metrics dict
    after_epoch(trainer)                       the epoch's results row is written: ``trainer.state.row``
                                               maps every results.csv column to its value
    after_checkpoint(trainer, path, kind)      after a checkpoint file is written: kind "last", "best",
                                               "periodic" or "interrupted"
    after_train(trainer)                       the run ended normally or by a signal; ``trainer.result``
                                               holds the final metrics (plots and best.pt exist by then)
    on_failure(trainer, error)                 the run raised ``error`` (it is re-raised afterwards)

A hook's own exception propagates (a bug in a user's hook should be loud); the experiment-tracker hooks in
``utils.tracking`` catch theirs instead, so that a tracker never costs the run.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from utils.engine.trainer import Trainer

EVENTS = ("before_train", "on_epoch_start", "after_step", "after_validation", "after_epoch", "after_checkpoint",
          "after_train", "on_failure")


class Hook:
    """Override the events you need; every default does nothing."""

    def before_train(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...

    def after_step(self, trainer: Trainer, batch_index: int, batch: Any) -> None: ...

    def after_validation(self, trainer: Trainer, epoch: int, metrics: dict) -> None: ...

    def after_epoch(self, trainer: Trainer) -> None: ...

    def after_checkpoint(self, trainer: Trainer, path: Path, kind: str) -> None: ...

    def after_train(self, trainer: Trainer) -> None: ...

    def on_failure(self, trainer: Trainer, error: BaseException) -> None: ...


class HookList:
    """The run's hooks, fired in the order given."""

    def __init__(self, hooks: Iterable[Any] = ()) -> None:
        self.hooks = list(hooks)
        for hook in self.hooks:
            known = [name for name in EVENTS if callable(getattr(hook, name, None))]
            if not known:
                raise TypeError(f"{hook!r} is not a hook: it has none of the events {', '.join(EVENTS)}")

    def fire(self, event: str, trainer: Trainer, *args: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}; events: {', '.join(EVENTS)}")
        for hook in self.hooks:
            method = getattr(hook, event, None)  # duck-typed hooks may implement only some events
            if method is not None:
                method(trainer, *args)

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self):
        return iter(self.hooks)


# Experiment trackers --loggers can name: plugins above the engine (utils.tracking imports the engine, never
# the reverse), found by path and imported only when chosen, so nothing turns on because a package is installed.
TRACKERS: dict[str, str] = {
    "mlflow": "utils.tracking.mlflow_tracker:MlflowTracker",
    "wandb": "utils.tracking.wandb_tracker:WandbTracker",
    "clearml": "utils.tracking.clearml_tracker:ClearmlTracker",
    "comet": "utils.tracking.comet_tracker:CometTracker",
}
TRACKER_NAMES = tuple(TRACKERS)
# "" in a checkout, "yolov5_spd." in the installed wheel (whose build rewrites import lines, not these strings)
_PACKAGE_PREFIX = __name__[: -len("utils.engine.hooks")]


def hook_from_name(spec: str) -> Any:
    """A hook named on the command line: a tracker name (``mlflow``, ``wandb``, ``clearml``, ``comet``) or
    ``package.module:Name`` (a Hook class or a factory taking no arguments, imported from the user's own code)."""
    target = f"{_PACKAGE_PREFIX}{TRACKERS[spec]}" if spec in TRACKERS else spec
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--callbacks {spec}: expected package.module:Name (a Hook class or factory) or one of "
                         f"{', '.join(TRACKERS)}")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"--callbacks {spec}: {error}") from None
    return target()
