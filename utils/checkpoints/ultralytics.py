"""Importing an ultralytics checkpoint (a pickled ``ultralytics.nn.tasks.DetectionModel``: YOLOv8 / YOLO11
detection) into our format. The pickle is read by the allow-list unpickler: nothing of ultralytics is imported
or run. Models of other tasks or families are one line naming what they are and what is supported."""

from __future__ import annotations

from pathlib import Path

import torch

from utils.checkpoints.format import FORMAT, CheckpointError
from utils.checkpoints.unpickler import PickledObject, module_state_dict

SUPPORTED = "supported: YOLOv8 and YOLO11 detection checkpoints (and the YOLOv5 family)"
_OTHER_TASKS = {"SegmentationModel": "segmentation", "PoseModel": "pose", "OBBModel": "oriented-box (OBB)",
                "ClassificationModel": "classification", "RTDETRDetectionModel": "RT-DETR detection",
                "WorldModel": "YOLO-World detection", "YOLOEModel": "YOLOE detection",
                "YOLOESegModel": "YOLOE segmentation"}
# The layers of ultralytics' YOLOv8 / YOLO11 detection YAMLs, all built here under the same names.
_KNOWN_ROWS = {"Conv", "C2f", "C3k2", "SPPF", "C2PSA", "Concat", "nn.Upsample", "Detect", "DWConv", "C3", "SPP",
               "Bottleneck"}


def is_ultralytics_model(obj: object) -> bool:
    """Whether an unpickled model object comes from the ultralytics package."""
    return isinstance(obj, PickledObject) and obj.qualified_name.startswith("ultralytics.")


def convert_ultralytics_checkpoint(raw: dict, path: str | Path) -> dict:
    """Our checkpoint dict for the pickled ultralytics model in ``raw`` (EMA weights when present)."""
    source = raw.get("ema") if isinstance(raw.get("ema"), PickledObject) else raw.get("model")
    kind = source.qualified_name.rsplit(".", 1)[-1]
    if kind != "DetectionModel":
        what = _OTHER_TASKS.get(kind, kind)
        raise CheckpointError(f"{path}: an ultralytics {what} model ({source.qualified_name}), which this project "
                              f"does not build; {SUPPORTED}")
    config = source.get("yaml")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the ultralytics model carries no YAML config")
    rows = [r for r in list(config.get("backbone") or []) + list(config.get("head") or [])]
    unknown = sorted({str(r[2]) for r in rows if isinstance(r, list) and len(r) == 4} - _KNOWN_ROWS)
    head = _head(source)
    if head is None or head.qualified_name != "ultralytics.nn.modules.head.Detect" or unknown:
        found = head.qualified_name.rsplit(".", 1)[-1] if head is not None else "no head"
        raise CheckpointError(f"{path}: an ultralytics detection model of a family this project does not build "
                              f"({found} head" + (f"; layers {', '.join(unknown)}" if unknown else "") +
                              f", e.g. YOLOv10 / YOLO26 / RT-DETR); {SUPPORTED}")
    try:
        state = module_state_dict(source)
    except ValueError as exc:
        raise CheckpointError(f"{path}: unsafe or unsupported checkpoint, not loaded ({exc})") from None
    if config.get("end2end") or head.get("end2end") or any(".one2one_" in k for k in state):
        raise CheckpointError(f"{path}: an NMS-free (end2end) detection model such as YOLO26, which this project "
                              f"does not build; {SUPPORTED}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return {"format": FORMAT, "model": {"config": _our_config(config, state, head, path),
                                        "names": _names(source, path), "state_dict": state},
            "ema": None, "epoch": -1, "imported_from": str(path)}


def _head(source: PickledObject) -> PickledObject | None:
    layers = source.get("_modules", {}).get("model")
    children = list((layers.get("_modules") or {}).values()) if isinstance(layers, PickledObject) else []
    return children[-1] if children and isinstance(children[-1], PickledObject) else None


def _our_config(config: dict, state: dict[str, torch.Tensor], head: PickledObject, path: str | Path) -> dict:
    """ultralytics' YAML dict with its head row spelled as built here (class count, reg_max and the kind of class
    branch read off the weights themselves)."""
    index = len(config["backbone"]) + len(config["head"]) - 1
    cls_weight = state.get(f"model.{index}.cv3.0.2.weight")
    box_weight = state.get(f"model.{index}.cv2.0.2.weight")
    if cls_weight is None or box_weight is None:
        raise CheckpointError(f"{path}: the ultralytics Detect head's weights are not where its YAML puts them")
    nc, reg_max = int(cls_weight.shape[0]), int(box_weight.shape[0]) // 4
    depthwise = f"model.{index}.cv3.0.0.0.conv.weight" in state
    last = config["head"][-1]
    ours = {k: config[k] for k in ("scales", "scale", "backbone") if k in config}
    # the head names its class count "nc", as every config here does: the count lives in ours["nc"], so the same
    # graph with another class count (fine-tuning on a new dataset) is recognised as the same graph
    ours["head"] = [*config["head"][:-1], [last[0], last[1], "AnchorFreeDetect", ["nc", reg_max, depthwise]]]
    ours["nc"], ours["ch"] = nc, int(config.get("channels", config.get("ch", 3)))
    for key in ("depth_multiple", "width_multiple", "max_channels"):
        if key in config and "scales" not in config:
            ours[key] = config[key]
    return ours


def _names(source: PickledObject, path: str | Path) -> list[str]:
    names = source.get("names")
    if isinstance(names, dict):
        keys = sorted(names)
        if keys != list(range(len(keys))):
            raise CheckpointError(f"{path}: class ids {keys[:6]}... are not 0 .. {len(keys) - 1}: names would move")
        return [str(names[k]) for k in keys]
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    raise CheckpointError(f"{path}: the ultralytics model carries no class names")
