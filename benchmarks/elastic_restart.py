"""A lost worker under torchrun: two CPU processes train a tiny run with ``--max-restarts 1``; once two epochs are
saved, one worker is killed (SIGKILL, as a pre-empted machine). torchrun restarts the group, which must continue
the same run folder from its last.pt: one results.csv row per epoch, no second run folder.

    scripts/env.sh python benchmarks/elastic_restart.py            # about 2 minutes on 2 cores
    scripts/env.sh python benchmarks/elastic_restart.py --keep /tmp/elastic   # keep the run folder and the log

Prints what it saw and exits 1 when the run did not continue as it should.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rows(results: Path) -> list[int]:
    if not results.is_file():
        return []
    with open(results, newline="") as f:
        return [int(float(row["epoch"])) for row in csv.DictReader(f)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--kill-after", type=int, default=2, help="epochs saved before a worker is killed")
    p.add_argument("--keep", default="", help="a folder for the runs and the log (default: a temporary one)")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="elastic_"))
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--max-restarts", "1", str(ROOT / "train.py"), "--epochs", str(args.epochs), "--imgsz", "64",
               "--batch-size", "8", "--workers", "0", "--device", "cpu", "--noplots", "--project", str(work / "runs")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(work / "log.txt", "w") as log:
        agent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(_rows(work / "runs" / "exp" / "results.csv")) < args.kill_after:
            time.sleep(1)
        workers = _children(agent.pid)
        if not workers:
            raise SystemExit(f"no worker found; see {work / 'log.txt'}")
        os.kill(max(workers), signal.SIGKILL)
        print(f"killed worker {max(workers)} after {args.kill_after} epochs")
        code = agent.wait(timeout=900)
    folders = sorted(d.name for d in (work / "runs").iterdir())
    rows = _rows(work / "runs" / "exp" / "results.csv")
    restarted = "torchrun restart 1: continuing" in (work / "log.txt").read_text()
    print(f"torchrun exit status {code}; run folders {folders}; results.csv epochs {rows}; "
          f"continued by the restart: {restarted}")
    ok = code == 0 and folders == ["exp"] and rows == list(range(args.epochs)) and restarted
    print("ok: the restarted group continued the same run" if ok else f"FAILED (log: {work / 'log.txt'})")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
