"""What only detection training reads: its options (train.py's detection flags) and its hyp-file keys."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from utils.data.tiles import MAX_OVERLAP
from utils.engine.config import POSITIVE_GAIN, UNIT, ConfigurationError, HypSchema

DEFAULT_CFG = "space_depth_n.yaml"
DEFAULT_HYP = "hyp.quick.yaml"  # from --weights: hyp.finetune.yaml or hyp.finetune_new_domain.yaml instead


@dataclass
class DetectionOptions:
    """train.py's detection options (same names); the engine's are in TrainConfig."""

    spd: bool = False  # train the SPD form of cfg (or of the weights' graph)
    partial_transfer: bool = False
    max_pixels: int | None = None
    cache: str | None = None  # 'ram' or 'disk': decoded, resized training images
    tile: int = 0  # train on tile x tile windows of the images at native resolution (0: whole images)
    tile_overlap: float = 0.2
    tile_empty: float = 0.1  # share of the windows without any box that are kept
    val_tiles: bool = False  # validate on the same windows instead of whole images
    exact_decode: bool = False  # decode every JPEG at full size (default: reduced when >= 2x the size)
    fast_val: bool = False  # per-epoch validation without pycocotools (the final evaluation stays full)
    freeze: list[int] = field(default_factory=lambda: [0])
    multi_scale: bool = False
    rect: bool = False
    single_cls: bool = False
    noautoanchor: bool = False

    def __post_init__(self) -> None:
        self.freeze = list(self.freeze)
        if isinstance(self.cache, bool):  # options saved before --cache took ram/disk
            self.cache = "ram" if self.cache else None
        checks = [
            (all(isinstance(f, int) and f >= 0 for f in self.freeze),
             f"--freeze takes layer counts or indices >= 0, got {self.freeze}"),
            (self.cache in (None, "ram", "disk"), f"--cache {self.cache}: expected ram or disk"),
            (self.max_pixels is None or self.max_pixels >= 1, f"--max-pixels must be >= 1, got {self.max_pixels}"),
            (self.tile == 0 or self.tile >= 32, f"--tile must be 0 (off) or >= 32 pixels, got {self.tile}"),
            (0.0 <= self.tile_overlap <= MAX_OVERLAP,
             f"--tile-overlap must be in [0, {MAX_OVERLAP:g}] ({MAX_OVERLAP:g} already makes 100 windows per window "
             f"area), got {self.tile_overlap}"),
            (0.0 <= self.tile_empty <= 1.0, f"--tile-empty must be in [0, 1], got {self.tile_empty}"),
            (not self.val_tiles or self.tile, "--val-tiles needs --tile"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(message)


# The loss gains, anchor matching, augmentation and box-survival keys (the engine checks its own beside them)
DETECTION_HYP = HypSchema(
    required=frozenset({"box", "cls", "cls_pw", "obj", "obj_pw", "anchor_t", "hsv_h", "hsv_s", "hsv_v", "degrees",
                        "translate", "scale", "shear", "perspective", "flipud", "fliplr", "mosaic", "mixup"}),
    optional=frozenset({"fl_gamma", "albumentations", "min_box_side", "min_box_area", "nwd", "nwd_c", "close_mosaic"}),
    ranges={
        "box": POSITIVE_GAIN, "cls": POSITIVE_GAIN, "obj": POSITIVE_GAIN,
        "cls_pw": (0.0, math.inf, False, False), "obj_pw": (0.0, math.inf, False, False),
        "anchor_t": (1.0, math.inf, False, False),  # a ratio threshold: 1 or less assigns no target at all
        "fl_gamma": POSITIVE_GAIN, "hsv_h": UNIT, "hsv_s": UNIT, "hsv_v": UNIT,
        "degrees": (0.0, 180.0, True, True), "translate": (0.0, 0.5, True, True), "scale": (0.0, 1.0, True, False),
        "shear": (0.0, 45.0, True, True), "perspective": (0.0, 0.001, True, True), "flipud": UNIT, "fliplr": UNIT,
        "mosaic": UNIT, "mixup": UNIT, "albumentations": (0.0, 100.0, True, True),
        "min_box_side": POSITIVE_GAIN, "min_box_area": (0.0, 1.0, True, False),
        "nwd": UNIT, "nwd_c": (0.0, math.inf, False, False), "close_mosaic": (0.0, math.inf, True, False),
    },
    # yolov5 keys this project does not implement: accepted only when they ask for nothing
    zero_only={"copy_paste": "copy-paste needs segment labels, which detection training here does not read",
               "anchors": "anchors come from the model YAML and AutoAnchor; set them there"},
    unused={"iou_t": "is read by neither yolov5 nor this project (targets are assigned by anchor_t)"},
)

_AUGMENTATION_KEYS = frozenset({"hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective",
                                "flipud", "fliplr", "mosaic", "mixup"})
_ANCHOR_BASED_ONLY = "is read only by the anchor-based (YOLOv5) loss; the anchor-free head has no objectness or anchors"

# The anchor-free head's (YOLOv8 / YOLO11): ultralytics' loss gains and assigner, the same augmentation keys. A
# YOLOv5 hyp file lacks 'dfl' and is refused by name rather than read with its 100x smaller box gain.
ANCHOR_FREE_HYP = HypSchema(
    required=frozenset({"box", "cls", "dfl"}) | _AUGMENTATION_KEYS,
    optional=frozenset({"tal_topk", "tal_alpha", "tal_beta", "albumentations", "min_box_side", "min_box_area",
                        "close_mosaic"}),
    ranges={**{k: v for k, v in DETECTION_HYP.ranges.items() if k in _AUGMENTATION_KEYS | {
        "box", "cls", "albumentations", "min_box_side", "min_box_area", "close_mosaic"}},
            "dfl": POSITIVE_GAIN, "tal_topk": (1.0, 1000.0, True, True), "tal_alpha": POSITIVE_GAIN,
            "tal_beta": POSITIVE_GAIN},
    zero_only={"copy_paste": DETECTION_HYP.zero_only["copy_paste"]},
    unused={key: _ANCHOR_BASED_ONLY for key in ("obj", "obj_pw", "cls_pw", "anchor_t", "fl_gamma", "nwd", "nwd_c",
                                                 "iou_t")},
)
