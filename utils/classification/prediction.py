"""Classifier inference: a checkpoint and its preprocessing (size, mean, std) -> top-k classes per image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from models.loading import load_model
from utils.checkpoints.files import load_checkpoint, resolve_weights
from utils.classification.data import MEAN, STD
from utils.distributed import select_device


class Classifier:
    """Load once; ``predict`` BGR images or paths -> per image a list of (class name, probability), best first."""

    def __init__(self, weights: str | Path, device: str = "", imgsz: int | None = None, top: int = 5) -> None:
        path = resolve_weights(weights)
        preprocess = load_checkpoint(path).get("preprocess") or {}
        self.device = select_device(device)
        self.model = load_model(path, self.device, task="classification").to(memory_format=torch.channels_last)
        self.names = list(self.model.names)
        self.imgsz = int(imgsz or preprocess.get("imgsz", 32))
        self.mean = torch.tensor(preprocess.get("mean", MEAN)).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocess.get("std", STD)).view(1, 3, 1, 1)
        self.top = min(top, len(self.names))

    def _tensor(self, bgr: np.ndarray) -> torch.Tensor:
        rgb = cv2.cvtColor(cv2.resize(bgr, (self.imgsz, self.imgsz), interpolation=cv2.INTER_AREA),
                           cv2.COLOR_BGR2RGB)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255)
        return ((x - self.mean) / self.std).to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def predict_one(self, bgr: np.ndarray) -> list[tuple[str, float]]:
        """Top-k (class name, probability) pairs of one image."""
        probabilities = self.model(self._tensor(bgr)).float().softmax(1)[0]
        values, indices = probabilities.topk(self.top)
        return [(self.names[int(i)], float(v)) for v, i in zip(values.cpu(), indices.cpu())]
