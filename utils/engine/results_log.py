"""results.csv and TensorBoard: one row per epoch, written by rank 0, trimmed when a run resumes."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np


class ResultsLog:
    """The run's results.csv (``epoch`` then the task's columns) and its TensorBoard events."""

    def __init__(self, save_dir: Path, keys: list[str], enabled: bool) -> None:
        self.csv = save_dir / "results.csv"
        self.keys = list(keys)
        self.writer = None
        self.enabled = enabled
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(save_dir))

    def start(self, resume_epoch: int | None) -> None:
        """A new table, or (resuming at ``resume_epoch``) the old one without rows of that epoch and later."""
        if not self.enabled:
            return
        if resume_epoch is None:
            with open(self.csv, "w", newline="") as f:
                csv.writer(f).writerow(["epoch", *self.keys])
        else:
            drop_rows_from(self.csv, resume_epoch)

    def row(self, epoch: int, values: list[Any]) -> None:
        """Append one epoch's values to results.csv (and TensorBoard)."""
        with open(self.csv, "a", newline="") as f:
            csv.writer(f).writerow([epoch, *values])
        for key, value in zip(self.keys, values):
            self.writer.add_scalar(key, value, epoch)

    def add_image(self, tag: str, image_rgb: np.ndarray, epoch: int) -> None:
        """An HxWx3 RGB uint8 picture (e.g. a training batch) in TensorBoard."""
        if self.writer is not None:
            self.writer.add_image(tag, image_rgb, epoch, dataformats="HWC")

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.close()


def drop_rows_from(results_csv: Path, epoch: int) -> None:
    """Resuming at ``epoch``: rows of that epoch and later (written before the checkpoint that a kill or
    a full disk lost) are removed, so that no epoch appears twice."""
    if not results_csv.is_file():
        return
    with open(results_csv, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(float(r[0])) < epoch]
    if len(kept) != len(rows):
        tmp = results_csv.with_name(f".{results_csv.name}.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(tmp, results_csv)
