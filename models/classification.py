"""Image classifiers built from YAML like the detectors: ResNet18-SPD / ResNet50-SPD (the paper's Table 3) and
their strided CIFAR-style baselines (configs/resnet*.yaml).

Note: the authors' repository names a network ``resnet18_spd`` that is really a BottleNeck [3, 4, 6, 3] network
(28,043,336 parameters at 200 classes); the paper's ResNet18-SPD is BasicBlock [2, 2, 2, 2], which is what
``configs/resnet18_spd.yaml`` builds (20,565,576 parameters at 200 classes).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from models.parser import load_config, parse_model
from models.resnet_blocks import Classify


class ClassificationModel(nn.Module):
    """A classifier from a YAML config (rows as in the detector configs, ending in ``Classify``)."""

    def __init__(self, cfg: str | Path | dict = "resnet18_spd.yaml", nc: int | None = None, ch: int = 3) -> None:
        super().__init__()
        config = load_config(cfg)
        if nc is not None:
            config["nc"] = nc
        config["ch"] = ch
        self.yaml = {k: v for k, v in config.items() if not k.startswith("_")}
        self.model, self.save, self.out_channels = parse_model(config)
        if not isinstance(self.model[-1], Classify):
            raise TypeError("the last layer of a classification config must be Classify")
        self.names = [str(i) for i in range(int(config["nc"]))]

    @property
    def nc(self) -> int:
        """The number of classes (the head's outputs)."""
        return self.model[-1].linear.out_features

    def total_stride(self, probe: int = 64) -> int:
        """Input pixels per pixel of the last feature map (inputs must be multiples of it)."""
        was_training = self.training
        self.eval()
        x = torch.zeros(1, int(self.yaml["ch"]), probe, probe, device=next(self.parameters()).device)
        with torch.no_grad():
            for layer in self.model[:-1]:
                x = layer(x)
        self.train(was_training)
        return probe // x.shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.model:
            x = layer(x)
        return x
