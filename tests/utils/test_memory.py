import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Page faults of five rounds of allocating, touching and freeing six blocks of 4-24 MiB at once (as a training
# step frees its activation maps), after warm-up rounds; malloc directly, as PyTorch's CPU allocator calls it.
PROBE = """
import ctypes, resource
from utils.memory import keep_freed_memory
on = keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
sizes = [n << 20 for n in (24, 8, 16, 24, 4, 12)]
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


def _probe(setting: str) -> tuple[str, int]:
    env = {**os.environ, "YOLOV5_SPD_KEEP_FREED_MEMORY": setting,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
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
