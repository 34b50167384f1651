"""The checkpoint format's name, its one error type and the checks every reader shares."""

from __future__ import annotations

import torch

from utils.faces import UserFacingError

FORMAT = "yolov5-spd/1"


class CheckpointError(RuntimeError, UserFacingError):
    """A checkpoint that cannot be read; the message names the file and the problem."""



def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Weights with NaN or infinity detect nothing: refuse them, naming the first such tensor."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{source}: tensor {key} holds NaN or infinite values")



def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"
