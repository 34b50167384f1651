"""Importing a pickled checkpoint into our format, safely: the YOLOv5 family (``models.yolo.Model``) here, an
ultralytics ``DetectionModel`` (YOLOv8 / YOLO11) through :mod:`utils.checkpoints.ultralytics`."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from utils.checkpoints.format import FORMAT, CheckpointError, one_line
from utils.checkpoints.ultralytics import convert_ultralytics_checkpoint, is_ultralytics_model
from utils.checkpoints.unpickler import PickledObject, make_safe_pickle_module, module_state_dict


def import_pickled_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Convert a checkpoint that pickles its model object (YOLOv5 family or ultralytics) into our format."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location=map_location, weights_only=False,
                         pickle_module=make_safe_pickle_module())
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: unsafe or unsupported checkpoint, not loaded ({exc})") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(raw).__name__}")
    source = raw.get("ema") or raw.get("model")
    if is_ultralytics_model(source):
        return convert_ultralytics_checkpoint(raw, path)
    if not isinstance(source, PickledObject) or not source.qualified_name.endswith((".Model",
                                                                                    ".DetectionModel")):
        raise CheckpointError(f"{path}: no YOLOv5 model object in 'ema' or 'model'")
    config = source.get("yaml")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model carries no YAML config")
    try:
        state = module_state_dict(source)
    except ValueError as exc:
        raise CheckpointError(f"{path}: unsafe or unsupported checkpoint, not loaded ({exc})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    names = source.get("names") or [str(i) for i in range(int(config.get("nc", 80)))]
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    config = {k: v for k, v in config.items() if k in {"nc", "depth_multiple", "width_multiple", "anchors",
                                                       "backbone", "head", "ch"}}
    config["nc"] = int(_detect_nc(state, config))
    return {
        "format": FORMAT,
        "model": {"config": config, "names": [str(n) for n in names], "state_dict": state},
        "ema": None,
        "epoch": -1,
        "imported_from": str(path),
    }


def _detect_nc(state: dict[str, torch.Tensor], config: dict) -> int:
    """The class count the weights were trained for (the YAML's nc can be overridden at train time)."""
    anchors = [k for k in state if k.endswith(".anchors")]
    head_weights = [k for k in state if k.endswith(".m.0.weight") and anchors and
                    k.startswith(anchors[0].rsplit(".", 1)[0])]
    if not head_weights:
        return int(config.get("nc", 80))
    na = state[anchors[0]].shape[1]
    return state[head_weights[0]].shape[0] // na - 5
