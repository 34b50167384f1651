"""Checkpoint files: written atomically, read without executing code (YOLOv5-family files imported on the
fly), found by name, slimmed at the end of training.

Our checkpoint is a dict of tensors and plain data that ``torch.load(..., weights_only=True)`` reads::

    {"format": "yolov5-spd/1", "model": {"config", "names", "state_dict"}, "ema": state_dict | None,
     "optimizer": ..., "epoch": int, "best_fitness": float, ...}
"""

from __future__ import annotations

import errno
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from utils.checkpoints.format import FORMAT, CheckpointError, one_line
from utils.checkpoints.yolov5 import import_pickled_checkpoint
from utils.logging import LOGGER
from utils.paths import PACKAGE_ROOT


# ----------------------------------------------------------------------------------------------- writing
def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise CheckpointError(f"No space left on device: {path} (the previous file, if any, is intact)") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a killed save can leave behind in ``folder``."""
    removed = []
    for tmp in Path(folder).glob(".*.pt.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def model_payload(model: torch.nn.Module, half: bool = False) -> dict:
    """What rebuilds a model: its config, class names and weights (optionally fp16)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return {"config": dict(model.yaml), "names": list(model.names), "state_dict": state}


# ----------------------------------------------------------------------------------------------- reading
WEIGHTS_DIR = PACKAGE_ROOT / "weights"


def newest_run_checkpoint(project: str | Path, name: str = "best.pt") -> Path | None:
    """The most recently written ``<project>/*/weights/<name>`` (detect's default model, --resume's run)."""
    candidates = sorted(Path(project).glob(f"*/weights/{name}"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


def resolve_weights(weights: str | Path) -> Path:
    """A path as given (relative to the current folder), else a bare file name in ./weights/, else in the
    package's weights/ (the same folder in a checkout run from its root); a clear message when absent."""
    from utils.paths import find_named_file

    for folder in dict.fromkeys((Path("weights").resolve(), WEIGHTS_DIR.resolve())):
        path = find_named_file(weights, folder)
        if path is not None:
            return path
    if Path(weights).is_dir() and Path(weights).name.endswith("_openvino_model"):  # an OpenVINO export
        return Path(weights)
    if str(weights) and Path(weights).exists():  # a FIFO, a device such as /dev/zero, a folder: never read
        kind = "a folder" if Path(weights).is_dir() else "not a regular file (a pipe, device or socket)"
        raise CheckpointError(f"{weights}: {kind}; give a checkpoint file (.pt) or an export")
    raise CheckpointError(
        f"{weights}: weights file not found. Put checkpoints in ./weights/ (the SPD-Conv authors' released "
        f"*_best.pt and ultralytics yolov5*.pt are imported automatically, nothing is downloaded) or give a path")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read any supported ``.pt`` file as our checkpoint format, never executing code from it.

    Our own files load with ``weights_only=True``; YOLOv5-family files are converted on the fly.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    _check_archive(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        ckpt = None  # pickles model objects: YOLOv5-family, handled below
    except Exception as exc:  # truncated zip, not a torch file at all ...
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({one_line(exc)})") from None
    if ckpt is None:
        return import_pickled_checkpoint(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a YOLOv5-SPD checkpoint (no 'model' entry)")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {ckpt.get('format')!r}")
    return ckpt


def _check_archive(path: Path) -> None:
    """A zip checkpoint (torch.save's format) whose members fail their CRC is corrupt: refuse it rather than
    load flipped bytes as weights."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as exc:  # zipfile raises many kinds on a damaged directory (BadZipFile, UnicodeDecodeError...)
        raise CheckpointError(f"{path}: damaged checkpoint archive ({one_line(exc)})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (member {bad} fails its CRC check)")



def convert_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Import a YOLOv5-family checkpoint and write it in our format (readable with weights_only=True)."""
    return save_checkpoint(load_checkpoint(src), dst)


def write_slim(path: str | Path, extras: dict) -> None:
    """Replace a training checkpoint by its EMA weights in fp16 (no optimiser), with versions and ``extras``."""
    import platform

    ckpt = load_checkpoint(path)
    payload = dict(ckpt["model"])
    if ckpt.get("ema"):
        payload["state_dict"] = ckpt["ema"]
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    save_checkpoint({
        "format": FORMAT, "model": payload, "ema": None, "epoch": ckpt["epoch"],
        "best_fitness": ckpt.get("best_fitness", 0.0), "hyp": ckpt.get("hyp", {}),
        "options": ckpt.get("options", {}),
        "versions": {"torch": str(torch.__version__), "python": platform.python_version(), "format": FORMAT},
        **extras,
    }, path)



DEFAULT_DATA = "coco128.yaml"


def dataset_for(weights: str | Path, data: str | None, purpose: str = "using") -> str:
    """``data`` when given; else the dataset YAML the checkpoint was trained on, when it names one that
    exists; else coco128.yaml. Says which (``purpose``: e.g. "validating on")."""
    if data:
        return data
    trained_on = None
    if Path(weights).suffix == ".pt":
        ckpt = load_checkpoint(weights)
        trained_on = (ckpt.get("dataset") or ckpt.get("data") or {}).get("yaml")
    if trained_on and Path(trained_on).is_file():
        LOGGER.info(f"--data not given: {purpose} {trained_on}, the dataset {weights} was trained on")
        return trained_on
    LOGGER.info(f"--data not given: {purpose} {DEFAULT_DATA}"
                + (f" ({weights} was trained on {trained_on}, which is not here)" if trained_on else ""))
    return DEFAULT_DATA
