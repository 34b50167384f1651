import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Page faults of five rounds of allocating, touching and freeing blocks at once (as a training step frees its
# activation maps), after warm-up rounds; malloc directly, as PyTorch's CPU allocator calls it. Sizes in MiB
# from argv: six of 4-24 MiB, or a 64 MiB map among them (above glibc's 32 MiB mmap ceiling, as at 640).
PROBE = """
import ctypes, resource
from utils.memory import keep_freed_memory
on = keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
import sys
sizes = [int(n) << 20 for n in sys.argv[1:]]
def step():
    blocks = [libc.malloc(n) for n in sizes]
    for block, n in zip(blocks, sizes):
        ctypes.memset(block, 1, n)
    for block in blocks:
        libc.free(block)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(on, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        return False


SMALL = (24, 8, 16, 24, 4, 12)
WITH_LARGE = (24, 64, 8, 16)


def _env(setting: str) -> dict[str, str]:
    return {**os.environ, "YOLOV5_SPD_KEEP_FREED_MEMORY": setting,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _probe(setting: str, sizes: tuple[int, ...] = SMALL) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, *map(str, sizes)], capture_output=True, text=True,
                         env=_env(setting), check=True)
    on, faults = out.stdout.split()
    return on, int(faults)


@pytest.mark.skipif(not _glibc(), reason="glibc's mallopt")
def test_freed_memory_is_reused_without_page_faults():
    on, kept_faults = _probe("1")
    off, default_faults = _probe("0")
    assert (on, off) == ("True", "False")
    pages = 5 * (88 << 20) // 4096
    assert default_faults > pages // 2  # glibc hands the freed top of its heap back every round
    assert kept_faults < pages // 20


@pytest.mark.skipif(not _glibc(), reason="glibc's mallopt")
def test_blocks_above_the_mmap_ceiling_are_kept_only_by_default():
    pages = 5 * (sum(WITH_LARGE) << 20) // 4096
    on, kept_faults = _probe("1", WITH_LARGE)
    small, small_faults = _probe("small", WITH_LARGE)
    assert (on, small) == ("True", "True")
    assert kept_faults < pages // 20
    assert small_faults > 5 * (64 << 20) // 4096 // 2  # the 64 MiB block is mapped and faulted in every round


def test_an_unknown_setting_is_refused_by_name():
    out = subprocess.run([sys.executable, "-c", "from utils.memory import keep_freed_memory; keep_freed_memory()"],
                         capture_output=True, text=True, env=_env("yes"))
    assert out.returncode != 0
    assert "YOLOV5_SPD_KEEP_FREED_MEMORY='yes'" in out.stderr.strip().splitlines()[-1]
