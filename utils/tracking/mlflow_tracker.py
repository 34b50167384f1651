"""MLflow: a local store beside the runs by default (``<project>/mlruns/``), or the user's MLFLOW_TRACKING_URI.

The default store is SQLite (``mlruns/mlflow.db``, artifacts in ``mlruns/artifacts``): MLflow 3 refuses new
plain-folder stores. ``mlflow ui --backend-store-uri sqlite:///runs/train/mlruns/mlflow.db`` shows it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from utils.engine.contract import RunContext
from utils.logging import LOGGER
from utils.tracking.base import Tracker

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-. :/]")  # MLflow's rule for metric and parameter names
MAX_PARAM_LENGTH = 6000


def metric_name(key: str) -> str:
    """A results.csv column as an MLflow name: characters MLflow refuses become '_'."""
    return _NOT_ALLOWED.sub("_", key)


def default_tracking_uri(project: Path) -> tuple[str, str]:
    """(tracking URI, artifact folder) of the local store in ``project``."""
    folder = (project / "mlruns").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts")


class MlflowTracker(Tracker):
    """A run in MLflow: parameters, metrics per epoch, pictures and the weights as artifacts."""
    name, package = "mlflow", "mlflow"

    def open(self, ctx: RunContext, params: dict[str, str]) -> None:
        self.library("mlflow")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        # a server that does not answer costs seconds, not MLflow's default minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        uri, artifacts = os.environ.get("MLFLOW_TRACKING_URI"), None
        if not uri:
            uri, artifacts = default_tracking_uri(ctx.save_dir.parent)
        self.client = MlflowClient(tracking_uri=uri)
        experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or ctx.save_dir.parent.name
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else self.client.create_experiment(experiment_name, artifact_location=artifacts))
        self.run_id = self.client.create_run(experiment_id, run_name=ctx.save_dir.name).info.run_id
        self.client.log_batch(self.run_id, params=[Param(metric_name(k), v[:MAX_PARAM_LENGTH])
                                                   for k, v in params.items()])
        LOGGER.info(f"mlflow: run {self.run_id} in experiment '{experiment_name}' at {uri}")

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(metric_name(k), v, now, epoch) for k, v in metrics.items()])

    def log_files(self, weights: list[Path], tables: list[Path], pictures: list[Path]) -> None:
        for path in weights:
            self.client.log_artifact(self.run_id, str(path), "weights")
        for path in tables + pictures:
            self.client.log_artifact(self.run_id, str(path))

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
