"""classify/val.py's job as a function: a classifier checkpoint scored on the val split of a dataset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from models.loading import load_model
from utils.checkpoints.files import load_checkpoint, resolve_weights
from utils.classification.data import ClassificationDataset, EpochDataLoader, load_classification_data
from utils.classification.evaluator import evaluate_classifier, save_classification_report
from utils.classification.task import DEFAULTS
from utils.distributed import select_device
from utils.logging import LOGGER, increment_path
from utils.options import ConfigurationError, JobOptions


@dataclass
class ClassifierValidationOptions(JobOptions):
    """classify/val.py's options (its flags' names). ``data`` None: the dataset the checkpoint was trained on;
    ``imgsz`` None: its training size."""

    weights: str = ""
    data: str | None = None
    imgsz: int | None = None
    batch_size: int = 128
    device: str = ""
    workers: int = 2
    project: str = "runs/classify/val"
    name: str = "exp"
    exist_ok: bool = False

    def check(self) -> None:
        if not self.weights:
            raise ConfigurationError("--weights: a classifier checkpoint is needed")
        if self.batch_size < 1 or self.workers < 0:
            raise ConfigurationError(f"--batch-size must be >= 1 and --workers >= 0, got {self.batch_size}, "
                                     f"{self.workers}")


def validate_classifier(options: ClassifierValidationOptions | str | Path | None = None, **keywords) -> dict:
    """classify/val.py: a classifier checkpoint on the val split of its data; top-1, top-5, per-class accuracy,
    confusion_matrix.png and metrics.json in the run folder. Options as an object, or the weights and keywords."""
    if isinstance(options, (str, Path)):
        options, keywords = None, {"weights": str(options), **keywords}
    o = options or ClassifierValidationOptions.from_dict(keywords, "validate_classifier")
    weights, data, imgsz, batch_size = o.weights, o.data, o.imgsz, o.batch_size
    path = resolve_weights(weights)
    ckpt = load_checkpoint(path)
    trained_on = (ckpt.get("dataset") or ckpt.get("data") or {}).get("yaml")
    data = data or trained_on or DEFAULTS["data"]
    imgsz = imgsz or int((ckpt.get("preprocess") or {}).get("imgsz", DEFAULTS["imgsz"]))
    torch_device = select_device(o.device)
    model = load_model(path, torch_device, task="classification").to(memory_format=torch.channels_last)
    dataset = load_classification_data(data)
    if len(dataset["names"]) != model.nc:
        raise ValueError(f"{path}: model has {model.nc} classes but {data} has {len(dataset['names'])}")
    loader = EpochDataLoader(ClassificationDataset(dataset["val"], imgsz), batch_size, o.workers, None)
    metrics = evaluate_classifier(model, loader, model.nc, torch_device)
    save_dir = increment_path(Path(o.project) / o.name, exist_ok=o.exist_ok)
    LOGGER.info(f"{path} on {data} val ({len(dataset['val'])} images at {imgsz}): top-1 {metrics['top1']:.4f} "
                f"top-5 {metrics['top5']:.4f} loss {metrics['val_loss']:.4f}")
    save_classification_report(metrics, dataset["names"], save_dir)
    summary = {k: v for k, v in metrics.items() if k != "confusion"}
    (save_dir / "metrics.json").write_text(json.dumps({**summary, "weights": str(path), "data": str(data),
                                                       "imgsz": imgsz}, indent=1))
    LOGGER.info(f"results saved to {save_dir}")
    return summary
