"""Hooks: objects that observe the training loop at named events without touching it.

Every event receives the run's :class:`~utils.engine.contract.RunContext` (``ctx``), the same view a task gets,
never the Trainer: ``ctx.progress`` (the loop state: epoch, metrics, ``row``: the last results row ...),
``ctx.config``, ``ctx.hyp``, ``ctx.save_dir``, ``ctx.model``, ``ctx.main`` (rank 0) and, after the run,
``ctx.result``. Hooks run on every process; one that logs or writes files should act only where ``ctx.main``.

Events, in the order a run fires them:

    before_train(ctx)                      setup done: model, data, optimiser, run folder exist
    on_epoch_start(ctx, epoch)             before the first batch of ``epoch`` (0-based)
    after_step(ctx, batch_index, batch)    after each batch's forward/backward (and optimiser step)
    after_validation(ctx, epoch, metrics)  rank 0, after each validation: the task's metrics dict
    after_epoch(ctx)                       the epoch's results row is written: ``ctx.progress.row`` maps
                                           every results.csv column to its value
    after_checkpoint(ctx, path, kind)      after a checkpoint file is written: kind "last", "best",
                                           "periodic" or "interrupted"
    after_train(ctx)                       the run ended normally or by a signal; ``ctx.result`` holds the
                                           final metrics (plots and best.pt exist by then)
    on_failure(ctx, error)                 the run raised ``error`` (it is re-raised afterwards); ``ctx`` is
                                           None when the run failed before its folder and settings existed

A hook's own exception propagates (a bug in a user's hook should be loud); the experiment-tracker hooks in
``utils.tracking`` catch theirs instead, so that a tracker never costs the run.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from utils.engine.config import TRACKERS
from utils.engine.contract import RunContext

EVENTS = ("before_train", "on_epoch_start", "after_step", "after_validation", "after_epoch", "after_checkpoint",
          "after_train", "on_failure")


class Hook:
    """Override the events you need; every default does nothing."""

    def before_train(self, ctx: RunContext) -> None:
        """Setup is done: model, data, optimiser and run folder exist."""

    def on_epoch_start(self, ctx: RunContext, epoch: int) -> None:
        """Before the first batch of ``epoch`` (0-based)."""

    def after_step(self, ctx: RunContext, batch_index: int, batch: Any) -> None:
        """After each batch's forward and backward (and optimiser step)."""

    def after_validation(self, ctx: RunContext, epoch: int, metrics: dict) -> None:
        """On rank 0 after each validation, with the task's metrics."""

    def after_epoch(self, ctx: RunContext) -> None:
        """The epoch's results row is written (``ctx.progress.row``)."""

    def after_checkpoint(self, ctx: RunContext, path: Path, kind: str) -> None:
        """A checkpoint file was written; ``kind``: last, best, periodic or interrupted."""

    def after_train(self, ctx: RunContext) -> None:
        """The run ended normally or by a signal; ``ctx.result`` holds the final metrics."""

    def on_failure(self, ctx: RunContext, error: BaseException) -> None:
        """The run raised ``error`` (re-raised afterwards); ``ctx`` is None before setup."""


class HookList:
    """The run's hooks, fired in the order given."""

    def __init__(self, hooks: Iterable[Any] = ()) -> None:
        self.hooks = list(hooks)
        for hook in self.hooks:
            known = [name for name in EVENTS if callable(getattr(hook, name, None))]
            if not known:
                raise TypeError(f"{hook!r} is not a hook: it has none of the events {', '.join(EVENTS)}")

    def fire(self, event: str, ctx: RunContext | None, *args: Any) -> None:
        """Call ``event`` on every hook that has it, in order."""
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}; events: {', '.join(EVENTS)}")
        for hook in self.hooks:
            method = getattr(hook, event, None)  # duck-typed hooks may implement only some events
            if method is not None:
                method(ctx, *args)

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self):
        return iter(self.hooks)


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
    if not callable(target):
        raise ValueError(f"--callbacks {spec}: {attribute} is a {type(target).__name__}, not a Hook class or factory")
    try:
        hook = target()
    except TypeError as error:
        raise ValueError(f"--callbacks {spec}: {attribute}() cannot be made without arguments ({error})") from None
    if not any(callable(getattr(hook, event, None)) for event in EVENTS):
        raise ValueError(f"--callbacks {spec}: {attribute} is not a hook: it has none of the events "
                         f"{', '.join(EVENTS)}")
    return hook
