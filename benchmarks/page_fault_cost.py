"""What a page fault costs on this machine: fresh anonymous memory touched once per 4 KiB page, unmapped, and
touched again after an idle pause. On a virtual machine whose balloon reports free memory to the host (free page
reporting), memory that lay free for a while costs a host fault as well, which shows as a slower touch after the
longer pauses.

    scripts/env.sh python benchmarks/page_fault_cost.py                      # 1 GiB
    scripts/env.sh python benchmarks/page_fault_cost.py --mib 12000 --pauses 0 0 5 0 30
"""

from __future__ import annotations

import argparse
import mmap
import time

import numpy as np

PAGE = 4096


def touch_once(size: int) -> float:
    """Seconds to write one byte into every page of a fresh anonymous mapping of ``size`` bytes."""
    region = mmap.mmap(-1, size)
    pages = np.frombuffer(region, dtype=np.uint8)
    start = time.perf_counter()
    pages[::PAGE] = 1
    seconds = time.perf_counter() - start
    del pages
    region.close()
    return seconds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=1024, help="memory touched each time")
    p.add_argument("--pauses", type=float, nargs="+", default=[0, 0, 0, 5, 0, 10, 0],
                   help="idle seconds before each touch")
    args = p.parse_args()
    size = args.mib << 20
    for pause in args.pauses:
        time.sleep(pause)
        seconds = touch_once(size)
        print(f"after {pause:g} s idle: {args.mib} MiB in {seconds * 1e3:.0f} ms, "
              f"{seconds / (size // PAGE) * 1e6:.2f} us per page", flush=True)


if __name__ == "__main__":
    main()
