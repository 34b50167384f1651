"""One image-size rule for training, validation, inference, export and the hub: a size (or an (h, w) pair) is
rounded up to a multiple of the model's largest stride, with a one-line note when it changes, and a size
whose input alone could not fit in the device's memory is refused before any work starts."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from utils.logging import LOGGER

# the input tensor, its first feature maps and their gradients: a floor, not an estimate, of what a step needs
_BYTES_PER_INPUT_VALUE = 4 * 8


class ImageSizeError(ValueError):
    """An image size no model can run at; the message names the option."""


def device_memory_bytes(device: str | None = None) -> int | None:
    """Total memory of a CUDA device, else of this machine (None when it cannot be found)."""
    if device and str(device).startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_image_size(imgsz: int | Sequence[int], stride: int, option: str = "--imgsz", batch_size: int = 1,
                     device: str | None = None, quiet: bool = False) -> int | tuple[int, int]:
    """``imgsz`` (an int, or (h, w)) rounded up to a multiple of ``stride``; an int stays an int."""
    sizes = [imgsz] if isinstance(imgsz, (int, float)) else list(imgsz)
    if not 1 <= len(sizes) <= 2 or any(isinstance(s, bool) or int(s) != s or s < 1 for s in sizes):
        raise ImageSizeError(f"{option} must be one or two whole numbers >= 1 (pixels), got {imgsz}")
    stride = max(int(stride), 1)
    rounded = [math.ceil(int(s) / stride) * stride for s in sizes]
    if rounded != [int(s) for s in sizes] and not quiet:
        LOGGER.info(f"{option} {' '.join(map(str, sizes))} rounded up to {' '.join(map(str, rounded))}, a multiple "
                    f"of the model's largest stride {stride}")
    h, w = rounded if len(rounded) == 2 else rounded * 2
    memory = device_memory_bytes(device)
    needed = batch_size * 3 * h * w * _BYTES_PER_INPUT_VALUE
    if memory is not None and needed > memory:
        one_fits = needed / batch_size <= memory  # then the batch is what does not fit
        given = f"--batch-size {batch_size} with " if one_fits else ""
        raise ImageSizeError(f"{given}{option} {' '.join(map(str, sizes))}: a batch of {batch_size} at {h}x{w} "
                             f"needs at least {needed / 2**30:.0f} GiB, more than the {memory / 2**30:.0f} GiB of "
                             f"{device or 'this machine'}; choose a smaller {'batch' if one_fits else 'size'}")
    return rounded[0] if len(rounded) == 1 else (rounded[0], rounded[1])
