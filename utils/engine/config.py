"""Training options as one checked dataclass, and hyper-parameter files checked key by key.

A :class:`TrainConfig` is built from the command line (train.py), from a YAML file or from Python; every value
is checked when it is built, so a mistake is one clear line before anything runs. Checkpoints store it as a
plain dict and ``--resume`` rebuilds it from there.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.image_size import ImageSizeError, check_image_size
from utils.logging import LOGGER
from utils.options import ConfigurationError, nearest_hint
from utils.paths import PACKAGE_ROOT, find_named_file
from utils.yaml_files import load_yaml_mapping

OPTIMIZER_KERNELS = ("auto", "fused", "foreach", "loop")  # utils.engine.optim.build_optimizer's ``kernel``

# Experiment trackers --loggers can name: plugins above the engine (utils.tracking imports the engine, never
# the reverse), found by path and imported only when chosen, so nothing turns on because a package is installed.
TRACKERS: dict[str, str] = {
    "mlflow": "utils.tracking.mlflow_tracker:MlflowTracker",
    "wandb": "utils.tracking.wandb_tracker:WandbTracker",
    "clearml": "utils.tracking.clearml_tracker:ClearmlTracker",
    "comet": "utils.tracking.comet_tracker:CometTracker",
}
TRACKER_NAMES = tuple(TRACKERS)

CONFIG_DIR = PACKAGE_ROOT / "configs"
DEFAULT_EPOCHS = 30




@dataclass
class TrainConfig:
    """The options every training run has (train.py's names), plus the task's own as ``task_options``.

    ``task_options`` is a dataclass of the task (detection: :class:`utils.detection.options.DetectionOptions`);
    :meth:`from_dict` splits one flat command line between the two, so users still see one set of options,
    and an option of another task is an error instead of being silently ignored.
    """

    cfg: str = ""  # model YAML; "" = the task's default, or the --weights model
    data: str = "smallobj.yaml"
    hyp: str = ""  # "" = the task's default (chosen from the weights and the data when fine-tuning)
    weights: str = ""
    epochs: int | None = None  # None: 30 for a new run, the saved value when resuming
    batch_size: int = 16  # total over all processes
    imgsz: int = 256  # the task rounds it to its model's stride (utils.image_size)
    device: str = ""
    workers: int = 2
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    resume: bool | str = False  # True: the newest run; a path: that last.pt
    keep_optimizer: bool = False  # keep the optimiser state in a finished run's last.pt (exact extension)
    resume_changed_data: bool = False  # let --resume continue on images/labels that changed since last.pt
    sync_bn: bool = False
    noval: bool = False
    val_period: int = 1  # validate every N epochs (the last epoch always)
    val_first: bool = False
    noplots: bool = False  # no pictures (labels, batches, curves, results.png); results.csv as always
    nosave: bool = False
    patience: int = 100
    save_period: int = -1
    seed: int = 0
    label_smoothing: float = 0.0
    optimizer: str | None = None  # None: the hyp file's, else SGD
    optimizer_kernel: str = "auto"  # how a step runs: auto (foreach), fused, foreach, loop
    compile: bool = False  # train through torch.compile (inductor); checkpoints keep the plain model
    linear_lr: bool = False
    no_amp: bool = False
    loggers: list[str] = field(default_factory=list)  # experiment trackers (utils.tracking): mlflow, wandb ...
    callbacks: list[str] = field(default_factory=list)  # hooks by name: package.module:Name or a tracker name
    task_options: Any = None  # the task's options dataclass; None: the task's defaults

    def __post_init__(self) -> None:
        self.check()

    @property
    def total_epochs(self) -> int:
        """The run's length: --epochs, else 30."""
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    def check(self) -> None:
        """Values no run can use: a ConfigurationError naming the option."""
        checks = [
            (self.batch_size >= 1 or self.batch_size == -1,
             f"--batch-size must be >= 1 (or -1 for AutoBatch on a GPU), got {self.batch_size}"),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.val_period >= 1, f"--val-period must be >= 1, got {self.val_period}"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.optimizer in (None, "SGD", "Adam", "AdamW", "auto"),
             f"--optimizer {self.optimizer}: SGD, Adam, AdamW or auto"),
            (self.optimizer_kernel in OPTIMIZER_KERNELS,
             f"--optimizer-kernel {self.optimizer_kernel}: choose one of {', '.join(OPTIMIZER_KERNELS)}"),
            (0.0 <= self.label_smoothing < 1.0, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(message)
        unknown = [name for name in self.loggers if name not in TRACKER_NAMES]
        if unknown:
            raise ConfigurationError(f"--loggers {unknown[0]}: unknown tracker; choose from {', '.join(TRACKER_NAMES)}")
        # the one size rule (the task rounds to its stride later); here: a whole number whose input fits
        try:
            check_image_size(self.imgsz, 1, batch_size=max(self.batch_size, 1), quiet=True)
        except ImageSizeError as exc:
            raise ConfigurationError(str(exc)) from None

    # ------------------------------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "options", strict: bool = True,
                  task_options: type | None = None) -> TrainConfig:
        """From one flat dict: the engine's keys here, the keys of the ``task_options`` dataclass there.
        Unknown keys are an error naming the nearest option (``strict``) or are dropped (a checkpoint written
        by another version)."""
        own = [f.name for f in dataclasses.fields(cls) if f.name != "task_options"]
        theirs = [f.name for f in dataclasses.fields(task_options)] if task_options else []
        unknown = [k for k in values if k not in own and k not in theirs and k != "task_options"]
        if unknown and strict:
            hint = nearest_hint(unknown[0], own + theirs)
            if not hint and task_options is not None:
                hint = f" ({task_options.__name__} has no such option either)"
            raise ConfigurationError(f"{source}: unknown option '{unknown[0]}'{hint}")
        extra = values.get("task_options")
        if task_options is not None and not isinstance(extra, task_options):
            extra = task_options(**{k: v for k, v in values.items() if k in theirs})
        return cls(**{k: v for k, v in values.items() if k in own}, task_options=extra)

    @classmethod
    def from_yaml(cls, path: str | Path, task_options: type | None = None) -> TrainConfig:
        """Options from an opt.yaml-style file (dashes or underscores)."""
        values = load_yaml_mapping(path, ConfigurationError)
        return cls.from_dict({k.replace("-", "_"): v for k, v in values.items()}, str(path),
                             task_options=task_options)

    def to_dict(self) -> dict[str, Any]:
        """One flat dict of plain values (YAML- and weights_only-safe): the engine's and the task's options."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "task_options"}
        if self.task_options is not None:
            values.update(dataclasses.asdict(self.task_options))
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}

    def replace(self, **changes: Any) -> TrainConfig:
        """A checked copy with ``changes`` (engine or task option names)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes},
                                     task_options=type(self.task_options) if self.task_options else None)


# ---------------------------------------------------------------------------------------- hyp files
@dataclass(frozen=True)
class HypSchema:
    """The hyp-file keys one part of a run reads: required, optional, the range of each number, the non-numbers,
    keys accepted only when they ask for nothing (with the reason), and keys read by nobody (warned about)."""

    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    ranges: dict[str, tuple[float, float, bool, bool]] = field(default_factory=dict)
    not_numbers: frozenset[str] = frozenset()
    zero_only: dict[str, str] = field(default_factory=dict)
    unused: dict[str, str] = field(default_factory=dict)

    def __or__(self, other: HypSchema) -> HypSchema:
        return HypSchema(self.required | other.required, self.optional | other.optional,
                         {**self.ranges, **other.ranges}, self.not_numbers | other.not_numbers,
                         {**self.zero_only, **other.zero_only}, {**self.unused, **other.unused})


UNIT = (0.0, 1.0, True, True)  # a probability or a fraction
POSITIVE_GAIN = (0.0, math.inf, True, False)

# What the engine itself reads: the optimiser, the schedule, warm-up and the BatchNorm switch
ENGINE_HYP = HypSchema(
    required=frozenset({"lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "warmup_momentum",
                        "warmup_bias_lr"}),
    optional=frozenset({"optimizer", "nbs", "freeze_bn_stats", "schedule", "warmup"}),
    ranges={"lr0": (0.0, 10.0, False, True), "lrf": (0.0, 1.0, False, True), "momentum": (0.0, 1.0, True, False),
            "weight_decay": (0.0, 1.0, True, False), "warmup_epochs": (0.0, math.inf, True, False),
            "warmup_momentum": (0.0, 1.0, True, False), "warmup_bias_lr": (0.0, 10.0, True, True),
            "nbs": (1.0, math.inf, True, False)},
    not_numbers=frozenset({"optimizer", "freeze_bn_stats", "schedule", "warmup"}),
)


def _range_text(low: float, high: float, low_in: bool, high_in: bool) -> str:
    if high == math.inf:
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def load_hyp(path: str | Path, schema: HypSchema = ENGINE_HYP) -> dict[str, Any]:
    """A hyper-parameter file (path or name in configs/), checked by :func:`check_hyp` against ``schema``
    (the engine's keys joined with the task's)."""
    found = find_named_file(path, CONFIG_DIR, ".yaml")
    if found is None:
        raise ConfigurationError(f"{path}: hyper-parameter file not found")
    hyp = load_yaml_mapping(found, ConfigurationError)
    check_hyp(hyp, str(found), schema)
    return hyp


def check_hyp(hyp: dict, source: str, schema: HypSchema = ENGINE_HYP) -> None:
    """Unknown (mistyped) or missing keys, non-numeric or out-of-range values: an error naming the key."""
    known = sorted(schema.required | schema.optional | set(schema.zero_only) | set(schema.unused))
    for key in hyp:
        if key not in known:
            raise ConfigurationError(f"{source}: unknown hyper-parameter '{key}'{nearest_hint(str(key), known)}")
    missing = sorted(schema.required - set(hyp))
    if missing:
        raise ConfigurationError(f"{source}: missing hyper-parameters {', '.join(missing)} "
                                 f"(see configs/hyp.scratch.yaml)")
    for key, value in hyp.items():
        if key not in schema.not_numbers and (isinstance(value, bool) or not isinstance(value, (int, float))
                                              or not math.isfinite(value)):
            raise ConfigurationError(f"{source}: hyper-parameter '{key}' must be a finite number, got {value!r}")
        if key in schema.ranges:
            low, high, low_in, high_in = schema.ranges[key]
            if not ((low <= value if low_in else low < value) and (value <= high if high_in else value < high)):
                raise ConfigurationError(f"{source}: hyper-parameter '{key}' is {value!r}; it must be "
                                         f"{_range_text(*schema.ranges[key])}")
        if key in schema.zero_only and value:
            raise ConfigurationError(f"{source}: '{key}: {value!r}' is not supported ({schema.zero_only[key]}); "
                                     f"remove it or set it to 0")
        if key in schema.unused and value:
            LOGGER.warning(f"{source}: '{key}' {schema.unused[key]}; ignored")
    if "freeze_bn_stats" in hyp and not isinstance(hyp["freeze_bn_stats"], bool):
        raise ConfigurationError(f"{source}: 'freeze_bn_stats' must be true or false, got {hyp['freeze_bn_stats']!r}")
    if "schedule" in hyp and hyp["schedule"] not in ("cosine", "linear"):
        raise ConfigurationError(f"{source}: 'schedule' must be cosine or linear, got {hyp['schedule']!r}")
    if "warmup" in hyp and hyp["warmup"] not in ("yolov5", "ultralytics"):
        raise ConfigurationError(f"{source}: 'warmup' must be yolov5 or ultralytics, got {hyp['warmup']!r}")
    if "optimizer" in hyp and hyp["optimizer"] not in ("SGD", "Adam", "AdamW", "auto"):
        raise ConfigurationError(f"{source}: 'optimizer' must be SGD, Adam, AdamW or auto, got {hyp['optimizer']!r}")
