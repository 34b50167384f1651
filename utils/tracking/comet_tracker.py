"""Comet: COMET_MODE=offline writes an archive (COMET_OFFLINE_DIRECTORY, default the run folder's comet/) for
`comet upload`; online it needs COMET_API_KEY (or ~/.comet.config), else one warning line."""

from __future__ import annotations

import os
from pathlib import Path

from utils.engine.contract import RunContext
from utils.tracking.base import Tracker, TrackerUnavailable

QUIET = dict(auto_metric_logging=False, auto_param_logging=False, auto_output_logging=False, log_code=False,
             log_graph=False, log_git_metadata=False, log_git_patch=False, log_env_details=False,
             display_summary_level=0)


def has_credentials() -> bool:
    """Whether a Comet API key is configured (environment or ~/.comet.config)."""
    return bool(os.environ.get("COMET_API_KEY")) or (Path.home() / ".comet.config").is_file()


class CometTracker(Tracker):
    """A run in Comet: parameters, metrics per epoch, pictures and the weights."""
    name, package = "comet", "comet-ml"

    def open(self, ctx: RunContext, params: dict[str, str]) -> None:
        comet_ml = self.library("comet_ml")
        project = os.environ.get("COMET_PROJECT_NAME") or ctx.save_dir.parent.name
        if os.environ.get("COMET_MODE", "").lower() == "offline":
            folder = os.environ.get("COMET_OFFLINE_DIRECTORY") or str(ctx.save_dir / "comet")
            self.experiment = comet_ml.OfflineExperiment(project_name=project, offline_directory=folder, **QUIET)
        elif has_credentials():
            self.experiment = comet_ml.Experiment(project_name=project, **QUIET)
        else:
            raise TrackerUnavailable("no Comet credentials (set COMET_API_KEY, or COMET_MODE=offline)")
        self.experiment.set_name(ctx.save_dir.name)
        self.experiment.log_parameters(params)

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        self.experiment.log_metrics(metrics, step=epoch, epoch=epoch)

    def log_files(self, weights: list[Path], tables: list[Path], pictures: list[Path]) -> None:
        for path in weights:
            self.experiment.log_model(path.stem, str(path))
        for path in tables:
            self.experiment.log_asset(str(path))
        for path in pictures:
            self.experiment.log_image(str(path), name=path.stem)

    def close(self, failed: bool) -> None:
        self.experiment.end()
