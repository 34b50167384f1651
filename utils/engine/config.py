"""Training options as one checked dataclass, and hyper-parameter files checked key by key.

A :class:`TrainConfig` is built from the command line (train.py), from a YAML file or from Python; every value
is checked when it is built, so a mistake is one clear line before anything runs. Checkpoints store it as a
plain dict and ``--resume`` rebuilds it from there.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.image_size import check_image_size
from utils.logging import LOGGER
from utils.paths import PACKAGE_ROOT, find_named_file
from utils.yaml_files import load_yaml_mapping

CONFIG_DIR = PACKAGE_ROOT / "configs"
DEFAULT_EPOCHS = 30


class ConfigurationError(ValueError):
    """An option or hyper-parameter no run can use; the message names it."""


def _nearest(key: str, known: list[str]) -> str:
    near = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


@dataclass
class TrainConfig:
    """Everything a training run needs to know (train.py's options, same names)."""

    cfg: str = ""  # model YAML; "" = the --weights model, else space_depth_n.yaml
    data: str = "smallobj.yaml"
    hyp: str = ""  # "" = hyp.quick.yaml; from weights: hyp.finetune.yaml or hyp.finetune_new_domain.yaml
    weights: str = ""
    spd: bool = False  # train the SPD form of cfg (or of the weights' graph)
    partial_transfer: bool = False
    epochs: int | None = None  # None: 30 for a new run, the saved value when resuming
    batch_size: int = 16  # total over all processes
    imgsz: int = 256
    device: str = ""
    workers: int = 2
    max_pixels: int | None = None
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    resume: bool | str = False  # True: the newest run; a path: that last.pt
    keep_optimizer: bool = False  # keep the optimiser state in a finished run's last.pt (exact extension)
    resume_changed_data: bool = False  # let --resume continue on images/labels that changed since last.pt
    sync_bn: bool = False
    cache: str | None = None  # 'ram' or 'disk': decoded, resized training images
    tile: int = 0  # train on tile x tile windows of the images at native resolution (0: whole images)
    tile_overlap: float = 0.2
    tile_empty: float = 0.1  # share of the windows without any box that are kept
    val_tiles: bool = False  # validate on the same windows instead of whole images
    exact_decode: bool = False  # decode every JPEG at full size (default: reduced when >= 2x the size)
    noval: bool = False
    val_period: int = 1  # validate every N epochs (the last epoch always)
    fast_val: bool = False  # per-epoch validation without pycocotools (the final evaluation stays full)
    val_first: bool = False
    noplots: bool = False  # no pictures (labels, batches, curves, results.png); results.csv as always
    nosave: bool = False
    patience: int = 100
    save_period: int = -1
    seed: int = 0
    freeze: list[int] = field(default_factory=lambda: [0])
    multi_scale: bool = False
    rect: bool = False
    single_cls: bool = False
    label_smoothing: float = 0.0
    optimizer: str | None = None  # None: the hyp file's, else SGD
    linear_lr: bool = False
    noautoanchor: bool = False
    no_amp: bool = False

    def __post_init__(self) -> None:
        if not self.cfg and not self.weights:
            self.cfg = "space_depth_n.yaml"
        if not self.hyp and not self.weights:  # with weights: chosen from the weights and the data (detection)
            self.hyp = "hyp.quick.yaml"
        self.freeze = list(self.freeze)
        if isinstance(self.cache, bool):  # options saved before --cache took ram/disk
            self.cache = "ram" if self.cache else None
        self.check()

    @property
    def total_epochs(self) -> int:
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    def check(self) -> None:
        """Values no run can use: a ConfigurationError naming the option."""
        checks = [
            (self.batch_size >= 1 or self.batch_size == -1,
             f"--batch-size must be >= 1 (or -1 for AutoBatch on a GPU), got {self.batch_size}"),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.imgsz >= 1, f"--imgsz must be >= 1 pixel, got {self.imgsz}"),
            (self.val_period >= 1, f"--val-period must be >= 1, got {self.val_period}"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (all(isinstance(f, int) and f >= 0 for f in self.freeze),
             f"--freeze takes layer counts or indices >= 0, got {self.freeze}"),
            (self.cache in (None, "ram", "disk"), f"--cache {self.cache}: expected ram or disk"),
            (self.max_pixels is None or self.max_pixels >= 1, f"--max-pixels must be >= 1, got {self.max_pixels}"),
            (self.optimizer in (None, "SGD", "Adam", "AdamW"), f"--optimizer {self.optimizer}: SGD, Adam or AdamW"),
            (0.0 <= self.label_smoothing < 1.0, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.tile == 0 or self.tile >= 32, f"--tile must be 0 (off) or >= 32 pixels, got {self.tile}"),
            (0.0 <= self.tile_overlap < 1.0, f"--tile-overlap must be in [0, 1), got {self.tile_overlap}"),
            (0.0 <= self.tile_empty <= 1.0, f"--tile-empty must be in [0, 1], got {self.tile_empty}"),
            (not self.val_tiles or self.tile, "--val-tiles needs --tile"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(message)
        check_image_size(self.imgsz, 1, batch_size=max(self.batch_size, 1), quiet=True)  # the size alone fits

    # ------------------------------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "options", strict: bool = True) -> TrainConfig:
        """From a plain dict; unknown keys are an error naming the nearest option (``strict``) or are
        dropped (reading a checkpoint written by another version)."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in values if k not in known]
        if unknown and strict:
            raise ConfigurationError(f"{source}: unknown option '{unknown[0]}'{_nearest(unknown[0], known)}")
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        values = load_yaml_mapping(path, ConfigurationError)
        return cls.from_dict({k.replace("-", "_"): v for k, v in values.items()}, str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain values (YAML- and weights_only-safe)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


# ---------------------------------------------------------------------------------------- hyp files
# Every key a hyp file may hold; the second set may be left out.
HYP_REQUIRED = {"lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "warmup_momentum", "warmup_bias_lr",
                "box", "cls", "cls_pw", "obj", "obj_pw", "anchor_t", "hsv_h", "hsv_s", "hsv_v", "degrees",
                "translate", "scale", "shear", "perspective", "flipud", "fliplr", "mosaic", "mixup"}
HYP_OPTIONAL = {"optimizer", "nbs", "fl_gamma", "albumentations", "freeze_bn_stats", "iou_t", "anchors",
                "copy_paste", "min_box_side", "min_box_area", "nwd", "nwd_c"}
_HYP_NOT_NUMBERS = {"optimizer", "freeze_bn_stats"}

# What each value can mean: (low, high, low included, high included); a value outside is one line naming it
_UNIT = (0.0, 1.0, True, True)
HYP_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr0": (0.0, 10.0, False, True), "lrf": (0.0, 1.0, False, True), "momentum": (0.0, 1.0, True, False),
    "weight_decay": (0.0, 1.0, True, False), "warmup_epochs": (0.0, math.inf, True, False),
    "warmup_momentum": (0.0, 1.0, True, False), "warmup_bias_lr": (0.0, 10.0, True, True),
    "box": (0.0, math.inf, True, False), "cls": (0.0, math.inf, True, False), "obj": (0.0, math.inf, True, False),
    "cls_pw": (0.0, math.inf, False, False), "obj_pw": (0.0, math.inf, False, False),
    "anchor_t": (1.0, math.inf, False, False),  # a ratio threshold: 1 or less assigns no target at all
    "fl_gamma": (0.0, math.inf, True, False), "hsv_h": _UNIT, "hsv_s": _UNIT, "hsv_v": _UNIT,
    "degrees": (0.0, 180.0, True, True), "translate": (0.0, 0.5, True, True), "scale": (0.0, 1.0, True, False),
    "shear": (0.0, 45.0, True, True), "perspective": (0.0, 0.001, True, True), "flipud": _UNIT, "fliplr": _UNIT,
    "mosaic": _UNIT, "mixup": _UNIT, "albumentations": (0.0, 100.0, True, True), "nbs": (1.0, math.inf, True, False),
    "min_box_side": (0.0, math.inf, True, False), "min_box_area": (0.0, 1.0, True, False),
    "nwd": _UNIT, "nwd_c": (0.0, math.inf, False, False),
}
# yolov5 keys this project does not implement: accepted only when they ask for nothing
_NOT_IMPLEMENTED = {
    "copy_paste": "copy-paste needs segment labels, which detection training here does not read",
    "anchors": "anchors come from the model YAML and AutoAnchor; set them there",
}


def _range_text(low: float, high: float, low_in: bool, high_in: bool) -> str:
    if high == math.inf:
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def load_hyp(path: str | Path, required: set[str] = HYP_REQUIRED, optional: set[str] = HYP_OPTIONAL) -> dict[str, Any]:
    """A hyper-parameter file (path or name in configs/), checked by :func:`check_hyp` against a task's keys."""
    found = find_named_file(path, CONFIG_DIR, ".yaml")
    if found is None:
        raise ConfigurationError(f"{path}: hyper-parameter file not found")
    hyp = load_yaml_mapping(found, ConfigurationError)
    check_hyp(hyp, str(found), required, optional)
    return hyp


def check_hyp(hyp: dict, source: str, required: set[str] = HYP_REQUIRED, optional: set[str] = HYP_OPTIONAL) -> None:
    """Unknown (mistyped) or missing keys and non-numeric values are an error naming the key."""
    known = sorted(required | optional)
    for key in hyp:
        if key not in known:
            raise ConfigurationError(f"{source}: unknown hyper-parameter '{key}'{_nearest(str(key), known)}")
    missing = sorted(required - set(hyp))
    if missing:
        raise ConfigurationError(f"{source}: missing hyper-parameters {', '.join(missing)} "
                                 f"(see configs/hyp.scratch.yaml)")
    for key, value in hyp.items():
        if key not in _HYP_NOT_NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))
                                            or not math.isfinite(value)):
            raise ConfigurationError(f"{source}: hyper-parameter '{key}' must be a finite number, got {value!r}")
        if key in HYP_RANGES:
            low, high, low_in, high_in = HYP_RANGES[key]
            if not ((low <= value if low_in else low < value) and (value <= high if high_in else value < high)):
                raise ConfigurationError(f"{source}: hyper-parameter '{key}' is {value!r}; it must be "
                                         f"{_range_text(*HYP_RANGES[key])}")
        if key in _NOT_IMPLEMENTED and value:
            raise ConfigurationError(f"{source}: '{key}: {value!r}' is not supported ({_NOT_IMPLEMENTED[key]}); "
                                     f"remove it or set it to 0")
    if hyp.get("iou_t"):
        LOGGER.warning(f"{source}: 'iou_t' is read by neither yolov5 nor this project (targets are assigned by "
                       f"anchor_t); ignored")
    if "freeze_bn_stats" in hyp and not isinstance(hyp["freeze_bn_stats"], bool):
        raise ConfigurationError(f"{source}: 'freeze_bn_stats' must be true or false, got {hyp['freeze_bn_stats']!r}")
    if "optimizer" in hyp and hyp["optimizer"] not in ("SGD", "Adam", "AdamW"):
        raise ConfigurationError(f"{source}: 'optimizer' must be SGD, Adam or AdamW, got {hyp['optimizer']!r}")
