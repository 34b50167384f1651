"""Console logging and run folders (exp, exp2, ...)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "yolov5_spd"


def get_logger(verbose: bool = True) -> logging.Logger:
    """The project's logger: plain messages on stdout, INFO (or WARNING when not ``verbose``)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    return logger


LOGGER = get_logger()


def increment_path(path: str | Path, exist_ok: bool = False, mkdir: bool = True) -> Path:
    """runs/train/exp -> runs/train/exp2, exp3, ... unless ``exist_ok``. A file where a folder of the path
    must be (``--project`` or ``--name`` naming a file) is a ValueError naming it."""
    path = Path(path)
    for folder in [*reversed(path.parents), *([path] if exist_ok else [])]:
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{path}: {folder} is a file, not a folder (check --project and --name)")
    if path.exists() and not exist_ok:
        n = 2
        while (candidate := path.with_name(f"{path.name}{n}")).exists():
            n += 1
        path = candidate
    if mkdir:
        path.mkdir(parents=True, exist_ok=True)
    return path


def live_progress(enabled: bool = True) -> bool:
    """Whether a live progress bar (tqdm) should be drawn: only on a terminal. In a log file its carriage returns
    would run the bar into the next line."""
    return enabled and sys.stderr.isatty()
