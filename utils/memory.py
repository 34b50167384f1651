"""How the process gets memory for large CPU tensors.

PyTorch allocates CPU tensors with ``malloc``. glibc maps blocks above its mmap threshold (128 KiB at first,
raised to the largest block freed so far, at most 32 MiB) and unmaps them on free, and it gives the top of its
heap back to the system whenever more than twice that threshold lies free there. A training step frees
hundreds of megabytes at once, so every activation map is page-faulted and zero-filled by the kernel again at
every step. The command-line tools call :func:`keep_freed_memory` first: every block comes from the heap, none
is mapped on its own, and freed memory stays in the heap for the next step or the next validation pass, as
jemalloc or tcmalloc would keep it. Measured on 2 cores (README, "Memory kept for reuse"): against keeping only
blocks up to 32 MiB (glibc's ceiling for its threshold, the setting before), whole 3-epoch runs at 640 are
19-28 % faster with a third of the page faults, for 20-48 % more peak memory there (3-16 % at 256); against
glibc's default, training steps at 256 are 1.07-1.17x faster.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_LARGEST_FROM_HEAP = 32 << 20  # glibc's ceiling for the threshold
_KEEP_UP_TO = 1 << 30  # free memory above this at the top of the heap still goes back to the system
SETTINGS = {"1": "every block from the heap", "small": "blocks up to 32 MiB from the heap", "0": "glibc's default"}


def keep_freed_memory() -> bool:
    """Serve CPU tensors from the heap and keep freed memory for reuse (glibc on Linux; a no-op elsewhere).
    ``YOLOV5_SPD_KEEP_FREED_MEMORY``: ``1`` (the default) every block, ``small`` only blocks up to 32 MiB
    (less peak memory at large inputs, more page faults), ``0`` glibc's own policy. Returns whether it is on.

    Leave PyTorch's transparent huge pages (``THP_MEM_ALLOC_ENABLE``) off with it, as they are by default:
    their 2 MiB-aligned blocks fragment a reused heap (measured: +10-20 % peak memory, no speed gained).
    """
    setting = os.environ.get("YOLOV5_SPD_KEEP_FREED_MEMORY", "1")
    if setting not in SETTINGS:
        raise ValueError(f"YOLOV5_SPD_KEEP_FREED_MEMORY={setting!r}: use one of "
                         + ", ".join(f"{k} ({v})" for k, v in SETTINGS.items()))
    if setting == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    kept = bool(mallopt(_M_MMAP_THRESHOLD, _LARGEST_FROM_HEAP) and mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO))
    # no mapped blocks at all; glibc still maps one where its heap cannot grow, so nothing fails for it
    return kept and (setting == "small" or bool(mallopt(_M_MMAP_MAX, 0)))
