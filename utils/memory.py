"""How the process gets memory for large CPU tensors.

PyTorch allocates CPU tensors with ``malloc``. glibc maps blocks above its mmap threshold (128 KiB at first,
raised to the largest block freed so far, at most 32 MiB) and unmaps them on free, and it gives the top of its
heap back to the system whenever more than twice that threshold lies free there. A training step frees
hundreds of megabytes at once, so every activation map is page-faulted and zero-filled by the kernel again at
every step. The command-line tools call :func:`keep_freed_memory` first: blocks up to 32 MiB come from the
heap from the start, and freed memory stays in it for the next step, as jemalloc or tcmalloc would keep it.
Measured with benchmarks/speed.py's training step on 2 cores: 1.07-1.17x faster than glibc's default and
about 1.05x faster than PyTorch's huge-page option (``THP_MEM_ALLOC_ENABLE=1``, used before), for 5-11 % more
peak memory than glibc's default (still 10-15 % below the reference implementation's).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST_FROM_HEAP = 32 << 20  # glibc's ceiling; larger blocks are still mapped and unmapped
_KEEP_UP_TO = 1 << 30  # free memory above this at the top of the heap still goes back to the system


def keep_freed_memory() -> bool:
    """Serve CPU tensors up to 32 MiB from the heap and keep freed memory for reuse (glibc on Linux; a no-op
    elsewhere or with ``YOLOV5_SPD_KEEP_FREED_MEMORY=0``). Returns whether it is on.

    Leave PyTorch's transparent huge pages (``THP_MEM_ALLOC_ENABLE``) off with it, as they are by default:
    their 2 MiB-aligned blocks fragment a reused heap (measured: +10-20 % peak memory, no speed gained).
    """
    if os.environ.get("YOLOV5_SPD_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _LARGEST_FROM_HEAP) and mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO))
