"""Reduced precision per device: fp16 on CUDA, bf16 on CPUs with native bf16 units, else fp32.

CPUs differ between machines: some have AVX-512 bf16 dot products and AMX tiles, many only AVX2, where bf16
is emulated and slower than fp32. :func:`cpu_bf16_native` asks PyTorch at run time; nothing is assumed.
bf16 keeps fp32's range but only 8 bits of mantissa (a 600-px coordinate rounds by up to 2 px), so the
detection head runs in fp32 under it (:class:`models.head.Detect`) and the losses take fp32 maps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def cpu_features() -> dict[str, bool]:
    """The CPU's reduced-precision units, as PyTorch's cpuinfo sees them."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # an older PyTorch without the query: assume nothing
        caps = {}
    return {name: bool(caps.get(name, False)) for name in ("avx2", "avx512_bf16", "amx_bf16", "amx_int8",
                                                           "avx512_vnni")}


def cpu_bf16_native() -> bool:
    """True when the CPU computes bf16 natively (AVX-512 bf16 or AMX), so autocast to bf16 pays."""
    features = cpu_features()
    return features["avx512_bf16"] or features["amx_bf16"]


def cpu_precision_line() -> str:
    """One line for logs and benchmarks: what this CPU has and what reduced precision will use."""
    features = cpu_features()
    units = [name for name in ("amx_bf16", "avx512_bf16", "amx_int8", "avx512_vnni", "avx2") if features[name]]
    verdict = "bf16 autocast available" if cpu_bf16_native() else "no native bf16: fp32 only"
    return f"CPU {', '.join(units) or 'baseline x86'} ({verdict})"


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The mixed-precision type for ``device``: fp16 on CUDA, bf16 on a native-bf16 CPU, else None (fp32)."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_bf16_native():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op for None."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def inference_half(model: object, device: torch.device, half: bool) -> tuple[bool, str]:
    """What ``--half`` means for ``model`` on ``device``: (use it, a line saying what runs). CUDA: fp16 weights
    (the model is converted here); CPU: bf16 autocast when the CPU has native bf16, else fp32 with a note."""
    if not half:
        return False, ""
    if device.type == "cuda":
        if hasattr(model, "half"):
            model.half()
            return True, "--half: fp16 on CUDA"
        return False, "--half: ignored for this exported model (its precision is fixed at export)"
    if not isinstance(model, torch.nn.Module):
        return False, "--half: ignored for this exported model on the CPU (its precision is fixed at export)"
    if not cpu_bf16_native():
        return False, f"--half: {cpu_precision_line()}; running fp32"
    return True, "--half: bf16 autocast on the CPU (box decoding and NMS in fp32)"


def half_inputs(device: torch.device, half: bool) -> bool:
    """Whether input images are cast to fp16 (CUDA --half); on the CPU autocast handles bf16."""
    return half and device.type == "cuda"


def inference_autocast(device: torch.device, half: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast for CPU --half, else nothing."""
    return autocast(device, torch.bfloat16 if half and device.type == "cpu" else None)


def precision_line(device: torch.device, dtype: torch.dtype | None, disabled: bool) -> str:
    """The log line that says how training steps compute."""
    if dtype is not None:
        name = "fp16 (CUDA AMP, loss scaling)" if dtype == torch.float16 else "bf16 autocast, fp32 weights and head"
        return f"mixed precision: {name}" + (f"; {cpu_precision_line()}" if device.type == "cpu" else "")
    if disabled:
        return "mixed precision: off (--no-amp), fp32"
    return f"mixed precision: fp32; {cpu_precision_line()}" if device.type == "cpu" else "fp32"
