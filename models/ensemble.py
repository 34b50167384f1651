"""Several detectors as one: every member sees the same input and their decoded predictions are concatenated
before NMS (yolov5's ``--weights a.pt b.pt``), so NMS chooses among all members' boxes."""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    """Members with the same class names; the largest stride of any member is the ensemble's."""

    def __init__(self, members: list, sources: list[str] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two models")
        sources = sources or [f"model {i}" for i in range(len(members))]
        first = list(members[0].names)
        for member, source in zip(members[1:], sources[1:]):
            if list(member.names) != first:
                raise ValueError(f"{source}: its classes ({len(member.names)}: {', '.join(member.names[:3])} ...) "
                                 f"differ from {sources[0]}'s ({len(first)}: {', '.join(first[:3])} ...); an ensemble "
                                 f"needs the same class list in the same order")
        modules = [m for m in members if isinstance(m, nn.Module)]
        self.members = nn.ModuleList(modules) if len(modules) == len(members) else None
        self._members = list(members)
        self.names = first
        self.nc = len(first)
        self.stride = max((m.stride for m in members), key=lambda s: float(s.max()))
        shapes = {getattr(m, "fixed_shape", None) for m in members}
        if len(shapes) > 1:
            raise ValueError(f"{', '.join(sources)}: members with different fixed input shapes {shapes}")
        self.fixed_shape = shapes.pop()
        families = {bool(getattr(m, "anchor_based", True)) for m in members}
        if len(families) > 1:  # their images are prepared and scored by different conventions
            raise ValueError(f"{', '.join(sources)}: an ensemble needs one head family; YOLOv5 (anchor-based) and "
                             f"YOLOv8 / YOLO11 (anchor-free) models are prepared and scored differently")
        self.anchor_based = families.pop()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self._members], 1)

    def forward_augmented(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time augmentation of every member, outputs concatenated before NMS."""
        if not all(hasattr(m, "forward_augmented") for m in self._members):
            raise ValueError("test-time augmentation needs PyTorch weights for every member of the ensemble")
        return torch.cat([m.forward_augmented(x) for m in self._members], 1)

    def for_inference(self) -> Ensemble:
        """Every member fused and in eval mode; returns the ensemble."""
        self._members = [m.for_inference() for m in self._members]
        if self.members is not None:
            self.members = nn.ModuleList(self._members)
        return self

    def parameters(self, recurse: bool = True):
        for member in self._members:
            yield from member.parameters()
