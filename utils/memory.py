"""How the process gets memory for large CPU tensors.

PyTorch allocates every CPU tensor with ``malloc``. glibc serves blocks above its mmap threshold (at most
32 MiB) from fresh ``mmap`` regions and unmaps them on free, so every activation map of a training step
is page-faulted and zero-filled by the kernel again at every step — a fifth of a yolov5n CPU step. The
command-line tools call :func:`keep_freed_memory` first: freed blocks then stay in the process for the next
step, as with jemalloc or tcmalloc, at no cost in peak memory (benchmarks/speed.py measures both).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_UP_TO = 1 << 30  # free memory above this at the top of the heap still goes back to the system


def keep_freed_memory() -> bool:
    """Serve large CPU tensors from the heap and keep freed memory for reuse (glibc on Linux; no-op elsewhere
    or with ``YOLOV5_SPD_KEEP_FREED_MEMORY=0``). Call before the first large allocation. Returns whether
    it is on.

    Leave PyTorch's transparent huge pages (``THP_MEM_ALLOC_ENABLE``) off with it, as they are by default:
    their 2 MiB-aligned blocks fragment a reused heap (measured: +10-20 % peak memory, no speed gained).
    """
    if os.environ.get("YOLOV5_SPD_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    if not (mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO)):
        return False
    return True
