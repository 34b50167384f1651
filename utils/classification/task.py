"""Image classification as a training task: ResNet(-SPD) models, classification data, cross-entropy, top-1 / top-5
and per-class accuracy with a confusion matrix. The loop is utils/engine/trainer.py's, unchanged.

    from utils.classification.task import train_classifier
    train_classifier(model="resnet18_spd.yaml", epochs=3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from models.classify import ClassificationModel
from models.loading import load_model
from models.summary import count_gflops, count_parameters
from utils import distributed as dist_utils
from utils.checkpoints.files import load_checkpoint, resolve_weights, write_slim
from utils.classification.data import MEAN, STD, ClassificationDataset, EpochDataLoader, load_classification_data
from utils.engine.config import HypSchema, TrainConfig
from utils.engine.contract import RunContext
from utils.engine.trainer import Trainer
from utils.image_size import check_image_size
from utils.logging import LOGGER

CSV_KEYS = ["train/loss", "val/loss", "metrics/accuracy_top1", "metrics/accuracy_top5", "x/lr0", "x/lr1", "x/lr2"]
DEFAULTS = {"cfg": "resnet18_spd.yaml", "data": "lowres10.yaml", "hyp": "hyp.classify_quick.yaml", "imgsz": 32,
            "epochs": 8, "batch_size": 64, "project": "runs/classify/train"}


def train_classifier(config: TrainConfig | dict | None = None, callbacks: list | tuple = (), **options: Any) -> dict:
    """Train a classifier; options as in classify/train.py (``model`` is the YAML, like ``cfg``);
    ``callbacks``: hook objects."""
    return Trainer(classification_config(config, **options), ClassificationTask(), callbacks).run()


def classification_config(config: TrainConfig | dict | None = None, **options: Any) -> TrainConfig:
    """classify/train.py's options (a TrainConfig, a dict or keywords) checked, with the classification defaults."""
    if isinstance(config, TrainConfig):
        return config
    values = {**DEFAULTS, **(config or {}), **options}
    if "model" in values:
        values["cfg"] = values.pop("model")
    return TrainConfig.from_dict(values, task_options=ClassificationOptions)


@dataclass
class ClassificationOptions:
    """Classification has no options beyond the engine's; a detection option given to it is an error."""


class ClassificationTask:
    """The classification task of :class:`utils.engine.trainer.Trainer`."""

    options_class = ClassificationOptions
    hyp_schema = HypSchema()  # the engine's optimiser and schedule keys are all it reads
    csv_keys = CSV_KEYS
    loss_names = ("loss",)

    def build_model(self, ctx: RunContext) -> None:
        config = ctx.config
        with dist_utils.main_process_first():
            self.data = load_classification_data(config.data)
        self.names = list(self.data["names"])
        if ctx.main:
            self._report(ctx.save_dir)
        self.model = self._build_model(ctx).to(ctx.device, memory_format=torch.channels_last)
        self.model.names = self.names
        self.imgsz = check_image_size(config.imgsz, self.model.total_stride(), quiet=not ctx.main)
        if ctx.main:
            LOGGER.info(f"{config.cfg or 'model'}: {count_parameters(self.model):,} parameters, "
                        f"{count_gflops(self.model, self.imgsz):.2f} GFLOPs at {self.imgsz}, {len(self.names)} classes")

    def build_data(self, ctx: RunContext, batch_size: int) -> None:
        config = ctx.config
        train_set = ClassificationDataset(self.data["train"], self.imgsz, augment=True)
        sampler = DistributedSampler(train_set, num_replicas=ctx.world, rank=ctx.rank, shuffle=True,
                                     seed=config.seed)
        self.train_loader = EpochDataLoader(train_set, batch_size, config.workers, sampler, config.seed)
        self.val_loader = EpochDataLoader(ClassificationDataset(self.data["val"], self.imgsz), batch_size * 2,
                                          config.workers, None) if ctx.main else None
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def _report(self, save_dir: Path) -> None:
        for split in ("train", "val"):
            part = self.data[split]
            LOGGER.info(f"{split}: {len(part)} images, {len(self.names)} classes ({self.data['format']})")
            if part.problems:
                report = save_dir / f"{split}_skipped.txt"
                report.write_text("".join(f"{line}\n" for line in part.problems))
                LOGGER.info(f"{split}: {len(part.problems)} files skipped, listed in {report}")

    def _build_model(self, ctx: RunContext) -> ClassificationModel:
        config, nc = ctx.config, len(self.names)
        if ctx.resume_state is not None:
            model = ClassificationModel(ctx.resume_state["model"]["config"])
            model.load_state_dict(ctx.resume_state["model"]["state_dict"])
            return model
        if not config.weights:
            return ClassificationModel(config.cfg, nc=nc)
        source = load_checkpoint(resolve_weights(config.weights))
        model = ClassificationModel(config.cfg or source["model"]["config"], nc=nc)
        state = source.get("ema") or source["model"]["state_dict"]
        own = model.state_dict()
        moved = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        model.load_state_dict(moved, strict=False)
        LOGGER.info(f"transferred {len(moved)}/{len(own)} tensors from {config.weights} (same name and shape)")
        return model

    # ------------------------------------------------------------------------------------ training
    def forward_loss(self, model: nn.Module, batch: Any, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor, int]:
        images, labels = batch
        images = images.to(ctx.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        logits = model(images)
        with ctx.phases("loss"):
            loss = self.loss_fn(logits.float(), labels.to(ctx.device))
        # scaled by the share of the nominal batch: gradients do not depend on the number of processes
        return loss * images.shape[0] / ctx.nominal_batch, loss.detach().view(1), images.shape[0]

    # ---------------------------------------------------------------------------------- evaluation
    def validate(self, model: nn.Module, ctx: RunContext) -> dict:
        if self.val_loader is None:
            return {}
        with ctx.phases("val inference"):
            return evaluate_classifier(model, self.val_loader, len(self.names), ctx.device)

    def fitness(self, metrics: dict) -> float:
        return metrics.get("top1", 0.0)

    def results_row(self, mean_loss: torch.Tensor, metrics: dict, lrs: list[float]) -> list[Any]:
        return [round(float(mean_loss[0]), 5), round(metrics.get("val_loss", math.nan), 5),
                round(metrics.get("top1", math.nan), 5), round(metrics.get("top5", math.nan), 5), *lrs]

    def describe(self, metrics: dict) -> str:
        return f"top-1 {metrics['top1']:.4f} top-5 {metrics['top5']:.4f} loss {metrics['val_loss']:.4f}"

    def checkpoint_extras(self) -> dict:
        return {"data": {"yaml": self.data["yaml_file"], "names": self.names},
                "preprocess": {"imgsz": self.imgsz, "mean": list(MEAN), "std": list(STD)}}

    def finish(self, ctx: RunContext) -> dict:
        """best.pt slimmed, scored as saved: accuracy, per-class accuracy, confusion matrix picture."""
        weights = ctx.weights_dir
        best = weights / "best.pt" if (weights / "best.pt").exists() else weights / "last.pt"
        if not best.exists() or self.val_loader is None:
            return {}
        write_slim(best, {"dataset": {"yaml": self.data["yaml_file"], "names": self.names},
                          "preprocess": self.checkpoint_extras()["preprocess"]})
        metrics = evaluate_classifier(load_model(best, ctx.device).to(memory_format=torch.channels_last),
                                      self.val_loader, len(self.names), ctx.device)
        save_classification_report(metrics, self.names, ctx.save_dir, plots=not ctx.config.noplots)
        LOGGER.info(f"{best}: top-1 {metrics['top1']:.4f} top-5 {metrics['top5']:.4f} "
                    f"(chance {1 / len(self.names):.4f})")
        return {k: v for k, v in metrics.items() if k != "confusion"}


@torch.inference_mode()
def evaluate_classifier(model: nn.Module, loader, nc: int, device: torch.device) -> dict:
    """Top-1 / top-5 accuracy, mean loss, per-class accuracy and the confusion matrix (true x predicted)."""
    was_training = model.training
    model.eval()
    confusion = np.zeros((nc, nc), dtype=np.int64)
    top5 = loss_sum = seen = 0.0
    for images, labels in loader:
        logits = model(images.to(device).contiguous(memory_format=torch.channels_last)).float()
        labels = labels.to(device)
        loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
        best = logits.topk(min(5, nc), 1).indices
        top5 += float((best == labels[:, None]).any(1).sum())
        np.add.at(confusion, (labels.cpu().numpy(), best[:, 0].cpu().numpy()), 1)
        seen += len(labels)
    model.train(was_training)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    return {"top1": float(confusion.diagonal().sum() / max(seen, 1)), "top5": top5 / max(seen, 1),
            "val_loss": loss_sum / max(seen, 1), "per_class": per_class.tolist(), "confusion": confusion}


def validate_classifier(weights: str, data: str | None = None, imgsz: int | None = None, batch_size: int = 128,
                        device: str = "", workers: int = 2, project: str = "runs/classify/val", name: str = "exp",
                        exist_ok: bool = False) -> dict:
    """classify/val.py: a classifier checkpoint on the val split of ``data`` (default: the dataset it was
    trained on); top-1, top-5, per-class accuracy, confusion_matrix.png and metrics.json in the run folder."""
    import json

    from utils.distributed import select_device
    from utils.logging import increment_path

    path = resolve_weights(weights)
    ckpt = load_checkpoint(path)
    trained_on = (ckpt.get("dataset") or ckpt.get("data") or {}).get("yaml")
    data = data or trained_on or DEFAULTS["data"]
    imgsz = imgsz or int((ckpt.get("preprocess") or {}).get("imgsz", DEFAULTS["imgsz"]))
    torch_device = select_device(device)
    model = load_model(path, torch_device, task="classification").to(memory_format=torch.channels_last)
    dataset = load_classification_data(data)
    if len(dataset["names"]) != model.nc:
        raise ValueError(f"{path}: model has {model.nc} classes but {data} has {len(dataset['names'])}")
    loader = EpochDataLoader(ClassificationDataset(dataset["val"], imgsz), batch_size, workers, None)
    metrics = evaluate_classifier(model, loader, model.nc, torch_device)
    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    LOGGER.info(f"{path} on {data} val ({len(dataset['val'])} images at {imgsz}): top-1 {metrics['top1']:.4f} "
                f"top-5 {metrics['top5']:.4f} loss {metrics['val_loss']:.4f}")
    save_classification_report(metrics, dataset["names"], save_dir)
    summary = {k: v for k, v in metrics.items() if k != "confusion"}
    (save_dir / "metrics.json").write_text(json.dumps({**summary, "weights": str(path), "data": str(data),
                                                       "imgsz": imgsz}, indent=1))
    LOGGER.info(f"results saved to {save_dir}")
    return summary


def save_classification_report(metrics: dict, names: list[str], save_dir: Path, plots: bool = True) -> None:
    """Per-class accuracy in the log and (``plots``) the confusion matrix picture (columns: true class)."""
    from utils.plots import plot_confusion_matrix

    for name, accuracy in zip(names[:50], metrics["per_class"]):
        LOGGER.info(f"{name:>24} {accuracy:.4f}")
    if len(names) > 50:
        LOGGER.info(f"... {len(names) - 50} more classes in per_class of the metrics")
    if plots:
        plot_confusion_matrix(metrics["confusion"].T, names, save_dir / "confusion_matrix.png", background=False)
