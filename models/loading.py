"""Rebuilding a model (detector or classifier) from a checkpoint, and moving a checkpoint's weights into
another graph (the SPD form, a P2 graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.classification import ClassificationModel
from models.spd_transfer import spd_config, transfer_state
from models.yolo import DetectionModel
from utils.checkpoints.files import load_checkpoint
from utils.checkpoints.format import CheckpointError, check_finite, one_line


def model_class(config: dict) -> type:
    """ClassificationModel for a config ending in Classify, else DetectionModel."""
    head = config.get("head") if isinstance(config, dict) else None
    if isinstance(head, list) and head and isinstance(head[-1], list) and len(head[-1]) == 4 \
            and head[-1][2] == "Classify":
        return ClassificationModel
    return DetectionModel


def model_from_payload(payload: dict, source: str = "checkpoint") -> torch.nn.Module:
    """Rebuild a model (detector or classifier) from a ``model_payload`` dict, checking every tensor matches."""

    config = payload.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: the model config is a {type(config).__name__}, not a mapping")
    try:
        model = model_class(config)(config, ch=int(config.get("ch", 3)))
    except Exception as exc:  # an untrusted config can break a constructor in many ways: one line for all
        raise CheckpointError(f"{source}: bad model config ({one_line(exc)})") from None
    names = payload.get("names") or model.names
    if not isinstance(names, (list, tuple)):
        raise CheckpointError(f"{source}: class names must be a list, got {type(names).__name__}")
    names = list(names)
    if len(names) != model.nc:
        raise CheckpointError(f"{source}: {len(names)} class names for a model with {model.nc} classes")
    model.names = [str(n) for n in names]
    check_finite(payload["state_dict"], source)
    expected = model.state_dict()
    state = {k: v for k, v in payload["state_dict"].items() if k in expected}
    missing = sorted(set(expected) - set(state))
    wrong = [k for k, v in state.items() if v.shape != expected[k].shape]
    if missing or wrong:
        raise CheckpointError(f"{source}: weights do not fit the model config "
                              f"({len(missing)} missing, {len(wrong)} of another shape, e.g. "
                              f"{(missing + wrong)[0]})")
    model.load_state_dict(state)
    return model.float()


def model_from_weights(ckpt: dict, cfg: str | Path | dict | None = None, nc: int | None = None,
                       spd: bool = False, allow_partial: bool = False):
    """A DetectionModel for ``cfg`` (default: the checkpoint's own graph; ``spd``: its SPD form) starting from
    the checkpoint's weights (EMA when present). Returns (model, :class:`models.spd_transfer.TransferReport`).

    The weights move exactly (the same graph, or a YOLOv5 graph into its SPD form); another graph raises
    :class:`models.spd_transfer.TransferError` unless ``allow_partial``.
    """
    payload = ckpt["model"]
    require_task(payload.get("config"), "detection", str(ckpt.get("imported_from", "--weights")))
    state = ckpt.get("ema") or payload["state_dict"]
    check_finite(state, str(ckpt.get("imported_from", "checkpoint")))
    target_cfg = cfg or payload["config"]
    if spd:
        target_cfg = spd_config(target_cfg).config
    model = DetectionModel(target_cfg, nc=nc if nc is not None else int(payload["config"].get("nc", 80)))
    report = transfer_state(state, payload["config"], model, allow_partial)
    names = list(payload.get("names") or [])
    if len(names) == model.nc:
        model.names = names
    return model, report


def checkpoint_task(config: Any) -> str:
    """'classification' or 'detection': what a checkpoint's model config builds."""
    return "detection" if model_class(config) is DetectionModel else "classification"


def require_task(config: Any, task: str | None, source: str) -> None:
    """A checkpoint of the other task is one line, before anything is built or written."""
    found = checkpoint_task(config)
    if task is not None and found != task:
        commands = {"detection": "train.py, val.py, detect.py and export.py",
                    "classification": "classify/train.py, val.py and predict.py"}
        raise CheckpointError(f"{source}: a {found} checkpoint, but {commands[task]} need a {task} checkpoint")


def load_model(weights: str | Path, device: str | torch.device = "cpu", task: str | None = None) -> torch.nn.Module:
    """Any supported ``.pt`` (ours or YOLOv5-family) -> a float32 model in eval mode; ``task`` ('detection' or
    'classification') refuses a checkpoint of the other kind in one line.

    The EMA weights are used when the checkpoint has them.
    """
    ckpt = load_checkpoint(weights)
    if isinstance(ckpt.get("model"), dict):
        require_task(ckpt["model"].get("config"), task, str(weights))
    payload = dict(ckpt["model"])
    if ckpt.get("ema"):
        payload["state_dict"] = ckpt["ema"]
    return model_from_payload(payload, str(weights)).to(device).eval()
