"""Classification figures: top-1 / top-5 and per-class accuracy, mean loss and the confusion matrix of a model
on a loader, and their report (the log and the confusion-matrix picture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from utils.logging import LOGGER


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


def save_classification_report(metrics: dict, names: list[str], save_dir: Path, plots: bool = True) -> None:
    """Per-class accuracy in the log and (``plots``) the confusion matrix picture (columns: true class)."""
    from utils.validation_plots import plot_confusion_matrix

    for name, accuracy in zip(names[:50], metrics["per_class"]):
        LOGGER.info(f"{name:>24} {accuracy:.4f}")
    if len(names) > 50:
        LOGGER.info(f"... {len(names) - 50} more classes in per_class of the metrics")
    if plots:
        plot_confusion_matrix(metrics["confusion"].T, names, save_dir / "confusion_matrix.png", background=False)
