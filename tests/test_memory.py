import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Page faults of five rounds of allocating, filling and freeing a 64 MiB tensor, after warm-up rounds (glibc's
# heap settles after a few: PyTorch's 64-byte-aligned blocks do not fit exactly into the ones freed before).
PROBE = """
import resource, sys, torch
from utils.memory import keep_freed_memory
on = keep_freed_memory()
def fill():
    torch.empty(16 << 20).fill_(1.0)
for _ in range(12):
    fill()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    fill()
print(on, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _probe(setting: str) -> tuple[str, int]:
    env = {**os.environ, "YOLOV5_SPD_KEEP_FREED_MEMORY": setting, "THP_MEM_ALLOC_ENABLE": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    on, faults = out.stdout.split()
    return on, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_tensor_memory_is_reused_without_page_faults():
    on, kept_faults = _probe("1")
    off, default_faults = _probe("0")
    assert (on, off) == ("True", "False")
    pages = 5 * (64 << 20) // 4096
    assert default_faults > pages // 2  # glibc maps and unmaps every 64 MiB block
    assert kept_faults < pages // 20
