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

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from models.classification import ClassificationModel
from models.loading import load_model
from models.summary import count_gflops, count_parameters
from utils import distributed as dist_utils
from utils.checkpoints.files import load_checkpoint, resolve_weights, write_slim
from utils.classification.data import MEAN, STD, ClassificationDataset, EpochDataLoader, load_classification_data
from utils.classification.evaluator import evaluate_classifier, save_classification_report
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
        """The ResNet(-SPD) classifier (new, from --weights or resumed) on the device."""
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
        """Train and val loaders for this process's batch."""
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
        """Cross-entropy of one batch, scaled to the nominal batch."""
        images, labels = batch
        images = images.to(ctx.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        logits = model(images)
        with ctx.phases("loss"):
            loss = self.loss_fn(logits.float(), labels.to(ctx.device))
        # scaled by the share of the nominal batch: gradients do not depend on the number of processes
        return loss * images.shape[0] / ctx.nominal_batch, loss.detach().view(1), images.shape[0]

    # ---------------------------------------------------------------------------------- evaluation
    def validate(self, model: nn.Module, ctx: RunContext) -> dict:
        """Top-1 / top-5 accuracy and loss of ``model`` on the val split."""
        if self.val_loader is None:
            return {}
        with ctx.phases("val inference"):
            return evaluate_classifier(model, self.val_loader, len(self.names), ctx.device)

    def fitness(self, metrics: dict) -> float:
        """Top-1 accuracy: what best.pt maximises."""
        return metrics.get("top1", 0.0)

    def results_row(self, mean_loss: torch.Tensor, metrics: dict, lrs: list[float]) -> list[Any]:
        """One results.csv row: train loss, val loss, top-1, top-5, learning rates."""
        return [round(float(mean_loss[0]), 5), round(metrics.get("val_loss", math.nan), 5),
                round(metrics.get("top1", math.nan), 5), round(metrics.get("top5", math.nan), 5), *lrs]

    def describe(self, metrics: dict) -> str:
        """One log line of the metrics."""
        return f"top-1 {metrics['top1']:.4f} top-5 {metrics['top5']:.4f} loss {metrics['val_loss']:.4f}"

    def checkpoint_extras(self) -> dict:
        """The dataset and the preprocessing, kept in every checkpoint."""
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
