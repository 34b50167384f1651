"""ClearML: CLEARML_OFFLINE_MODE=1 records the task locally (ClearML's offline session folder); online it needs
`clearml-init` (or CLEARML_API_ACCESS_KEY), else one warning line."""

from __future__ import annotations

import os
from pathlib import Path

from utils.engine.contract import RunContext
from utils.tracking.base import Tracker, TrackerUnavailable


def offline() -> bool:
    """Whether ClearML's offline mode is on."""
    return os.environ.get("CLEARML_OFFLINE_MODE", "").lower() in ("1", "true", "yes")


def has_credentials() -> bool:
    """Whether ClearML credentials are configured (environment or clearml.conf)."""
    config = Path(os.environ.get("CLEARML_CONFIG_FILE", Path.home() / "clearml.conf"))
    return bool(os.environ.get("CLEARML_API_ACCESS_KEY")) or config.is_file()


class ClearmlTracker(Tracker):
    """A run in ClearML: parameters, metrics per epoch, pictures and the weights as artifacts."""
    name, package = "clearml", "clearml"

    def open(self, ctx: RunContext, params: dict[str, str]) -> None:
        clearml = self.library("clearml")
        if offline():
            clearml.Task.set_offline(offline_mode=True)
        elif not has_credentials():
            raise TrackerUnavailable("no ClearML credentials (run `clearml-init`, or set CLEARML_OFFLINE_MODE=1)")
        self.clearml = clearml
        self.task = clearml.Task.init(project_name=ctx.save_dir.parent.name, task_name=ctx.save_dir.name,
                                      reuse_last_task_id=False, auto_connect_frameworks=False,
                                      auto_connect_arg_parser=False, auto_resource_monitoring=False)
        self.task.connect(params, name="options")

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        logger = self.task.get_logger()
        for key, value in metrics.items():
            title, _, series = key.partition("/")
            logger.report_scalar(title, series or title, value, iteration=epoch)

    def log_files(self, weights: list[Path], tables: list[Path], pictures: list[Path]) -> None:
        for path in weights:
            if offline():  # ClearML's offline session has no model store: the weights go in as an artifact
                self.task.upload_artifact(path.name, artifact_object=str(path))
            else:
                self.clearml.OutputModel(task=self.task, framework="PyTorch", name=path.stem).update_weights(
                    weights_filename=str(path), auto_delete_file=False)
        for path in tables:
            self.task.upload_artifact(path.name, artifact_object=str(path))
        logger = self.task.get_logger()
        for path in pictures:
            logger.report_image("plots", path.stem, iteration=0, local_path=str(path))

    def close(self, failed: bool) -> None:
        if failed:
            self.task.mark_failed(status_reason="training raised an error")
        self.task.close()
