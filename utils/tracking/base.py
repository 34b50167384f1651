"""What every tracker does with a run, and the rule that a tracker never costs the run.

A tracker is a :class:`~utils.engine.hooks.Hook` on rank 0. When training starts it opens a run in its
service and logs the options and the hyp file as parameters (``hyp/<key>``); after every epoch it logs each
numeric results.csv column (AP_S and the tiny-object bins included) at step = epoch; at the end it uploads
best.pt, results.csv and the run's pictures. Any failure (package missing, server unreachable, bad
credentials) is one warning line, after which the tracker stays quiet and training goes on.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType
from typing import Any

from utils.engine.contract import RunContext
from utils.engine.hooks import Hook
from utils.logging import LOGGER


class TrackerUnavailable(RuntimeError):
    """The tracker cannot start here (e.g. no credentials and no offline mode); the message says why."""


class Tracker(Hook):
    """Subclasses implement open / log_metrics / log_files / close; this class decides when to call them."""

    name = ""  # as --loggers names it
    package = ""  # what `pip install` needs

    def __init__(self) -> None:
        self.active = False

    # ----------------------------------------------------------------------------- backend interface
    def open(self, ctx: RunContext, params: dict[str, str]) -> None:
        """Start a run in the service, with the options and hyp as parameters."""
        raise NotImplementedError

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        """Log one epoch's numeric results.csv columns at step ``epoch``."""
        raise NotImplementedError

    def log_files(self, weights: list[Path], tables: list[Path], pictures: list[Path]) -> None:
        """Upload the weights, tables and pictures of the run."""
        raise NotImplementedError

    def close(self, failed: bool) -> None:
        """End the service's run (``failed``: the training raised)."""
        raise NotImplementedError

    # --------------------------------------------------------------------------------------- events
    def before_train(self, ctx: RunContext) -> None:
        """Open the service's run (rank 0 only)."""
        if ctx.main:
            self.active = True
            self._safely(self.open, ctx, run_parameters(ctx))

    def after_epoch(self, ctx: RunContext) -> None:
        """Log the epoch's row."""
        if self.active and ctx.progress.row:
            self._safely(self.log_metrics, numeric_columns(ctx.progress.row), int(ctx.progress.row["epoch"]))

    def after_train(self, ctx: RunContext) -> None:
        """Upload the run's files and close."""
        if self.active:
            self._safely(self.log_files, *run_files(ctx.save_dir))
            self._safely(self.close, False)
            self.active = False

    def on_failure(self, ctx: RunContext | None, error: BaseException) -> None:
        """Close the service's run as failed."""
        if self.active:
            self._safely(self.close, True)
            self.active = False

    # -------------------------------------------------------------------------------------- helpers
    def library(self, module: str) -> ModuleType:
        """The tracker's package, or TrackerUnavailable saying what to install."""
        try:
            return importlib.import_module(module)
        except ImportError:
            raise TrackerUnavailable(f"{module} is not installed (pip install {self.package})") from None

    def _safely(self, method: Any, *args: Any) -> None:
        if not self.active:
            return
        try:
            method(*args)
        except Exception as error:  # a tracker never costs the run
            self.active = False
            text = str(error).strip().splitlines()
            LOGGER.warning(f"--loggers {self.name}: {text[0] if text else type(error).__name__}; training goes on "
                           f"without it")


def run_parameters(ctx: RunContext) -> dict[str, str]:
    """The run's options and hyp file as flat text parameters (hyp keys as ``hyp/<key>``)."""
    params = {key: _text(value) for key, value in ctx.config.to_dict().items()}
    params.update({f"hyp/{key}": _text(value) for key, value in ctx.hyp.items()})
    params["save_dir"] = str(ctx.save_dir)
    return params


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def numeric_columns(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a results row (n/a bins and lr columns of epochs without a value left out)."""
    out = {}
    for key, value in row.items():
        if key == "epoch":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[key] = number
    return out


def run_files(save_dir: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(best.pt, the tables, the pictures) that exist in a finished run's folder."""
    weights = [p for p in [save_dir / "weights" / "best.pt"] if p.is_file()]
    tables = [p for p in [save_dir / "results.csv", save_dir / "opt.yaml", save_dir / "hyp.yaml"] if p.is_file()]
    pictures = sorted(save_dir.glob("*.png")) + sorted(save_dir.glob("*.jpg"))
    return weights, tables, pictures
