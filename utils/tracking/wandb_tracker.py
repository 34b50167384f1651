"""Weights & Biases: WANDB_MODE=offline writes the run under the run folder for a later `wandb sync`; online it
needs `wandb login` (or WANDB_API_KEY), else one warning line instead of an interactive prompt."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from utils.engine.contract import RunContext
from utils.tracking.base import Tracker, TrackerUnavailable

OFFLINE_MODES = ("offline", "dryrun", "disabled")


def has_credentials() -> bool:
    """Whether a Weights & Biases API key is configured (environment or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbTracker(Tracker):
    """A run in Weights & Biases: parameters, metrics per epoch, pictures and the weights."""
    name, package = "wandb", "wandb"

    def open(self, ctx: RunContext, params: dict[str, str]) -> None:
        wandb = self.library("wandb")
        if os.environ.get("WANDB_MODE", "").lower() not in OFFLINE_MODES and not has_credentials():
            raise TrackerUnavailable("no W&B credentials (run `wandb login`, or set WANDB_MODE=offline)")
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or ctx.save_dir.parent.name,
                              name=ctx.save_dir.name, dir=str(ctx.save_dir), config=params,
                              settings=wandb.Settings(init_timeout=60, console="off"))

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        self.run.log(metrics, step=epoch)

    def log_files(self, weights: list[Path], tables: list[Path], pictures: list[Path]) -> None:
        if weights:
            artifact = self.wandb.Artifact(f"run_{self.run.id}_model", type="model")
            for path in weights:
                artifact.add_file(str(path))
            self.run.log_artifact(artifact)
        if pictures:
            self.run.log({f"plots/{p.stem}": self.wandb.Image(str(p)) for p in pictures})
        for path in tables:
            self.run.save(str(path), base_path=str(path.parent), policy="now")

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)
