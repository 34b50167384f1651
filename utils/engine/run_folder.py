"""Where a run lives and how it continues: the locked run folder, the checkpoint a resume reads, RNG states."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import torch

from utils.checkpoints.files import load_checkpoint, newest_run_checkpoint, remove_stale_temporaries, save_checkpoint
from utils.logging import LOGGER


class RunFolder:
    """The run folder: created by this process (so removable if nothing was saved) and locked while training,
    so that a second run into the same folder (--exist-ok, --resume) is refused instead of interleaved."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.created = False
        self._lock = None

    def open(self, path: Path, main: bool) -> Path:
        """Create (or reopen) the run folder and take its lock."""
        self.path = path
        if not main:
            return path
        self.created = not path.exists()
        (path / "weights").mkdir(parents=True, exist_ok=True)
        lock = open(path / ".train.lock", "w")  # noqa: SIM115 (held for the whole run)
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            lock.close()
            self.created = False
            raise ValueError(f"{path}: another training run is writing to this folder") from None
        self._lock = lock
        for stale in remove_stale_temporaries(path / "weights"):
            LOGGER.info(f"removed {stale.name}, left by an interrupted save")
        return path

    def discard_if_empty(self) -> None:
        """Remove a run folder that never got its first checkpoint."""
        if self.created and self.path is not None and not any((self.path / "weights").glob("*.pt")):
            self.release()
            shutil.rmtree(self.path, ignore_errors=True)

    def release(self) -> None:
        """Give up the lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
            if self.path is not None:
                (self.path / ".train.lock").unlink(missing_ok=True)


def read_resumable(last: Path) -> dict:
    """A last.pt that holds a training state; a weights-only file is a one-line error saying what to do."""
    ckpt = load_checkpoint(last)
    if not (ckpt.get("optimizer") or ckpt.get("finished")) or "options" not in ckpt:
        raise ValueError(f"{last}: holds weights only (a best.pt, or an imported or converted file), not a "
                         f"training state; resume from the run's weights/last.pt, or start a new run from "
                         f"these weights with --weights {last}")
    return ckpt


ELASTIC_MARKER = "elastic_run.json"  # which torchrun job wrote a run folder, so that its restarts continue it


NAMED_JOB_SLACK_S = 3600  # a named job's folder must be newer than this machine's agent, give or take its peers


def _agent_started() -> float | None:
    """When the launching torchrun agent (this worker's parent) started, in seconds since the epoch; None where
    /proc cannot tell."""
    try:
        ticks = int(Path(f"/proc/{os.getppid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def elastic_identity() -> dict | None:
    """The torchrun job this process belongs to (None outside torchrun): its rendezvous id, and where the id
    is the default "none", the launching agent (host, process id and start time: the same across its restarts,
    never the same for two agents, even one reusing another's process id)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:
        return None
    if run_id and run_id != "none":
        return {"run_id": run_id}
    started = _agent_started()
    return {"run_id": "none", "host": socket.gethostname(), "agent": os.getppid(),
            "agent_started": None if started is None else round(started)}


def elastic_restart() -> int:
    """How many times torchrun has restarted this job's workers (0: the first attempt, or no torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def mark_elastic_run(save_dir: Path) -> None:
    """Write which torchrun job owns ``save_dir`` (rank 0, a new run under torchrun)."""
    identity = elastic_identity()
    if identity is not None:
        (save_dir / ELASTIC_MARKER).write_text(json.dumps(identity))


def restarted_run(project: Path) -> Path | None:
    """The run folder this restarted torchrun job began (the newest one marked with its identity), if any. A
    named rendezvous id can be used again by a later job: its folders written before this job's agent started
    (less the slack its peers may start apart) belong to an earlier job and are never continued."""
    identity = elastic_identity()
    if identity is None or not elastic_restart() or not project.is_dir():
        return None
    started = _agent_started() if identity["run_id"] != "none" else None
    mine = []
    for marker in project.glob(f"*/{ELASTIC_MARKER}"):
        try:
            same = json.loads(marker.read_text()) == identity
            if same and (started is None or marker.stat().st_mtime >= started - NAMED_JOB_SLACK_S):
                mine.append(marker.parent)
        except (OSError, ValueError):
            continue
    return max(mine, key=lambda folder: folder.stat().st_mtime) if mine else None


def find_latest_last(project: Path) -> Path:
    """The newest last.pt under ``project``, for ``--resume`` with no path."""
    last = newest_run_checkpoint(project, "last.pt")
    if last is None:
        raise FileNotFoundError(f"--resume: no {project}/*/weights/last.pt to resume from")
    return last


def rng_state() -> dict:
    """RNG states as tensors and lists (weights_only-loadable)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put back the torch (and, where present, CUDA) random state saved with a checkpoint."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def strip_finished_last(last: Path, keep_optimizer: bool) -> None:
    """A finished run's last.pt keeps weights, EMA, schedule and RNG (so --resume --epochs N extends it) but
    not the optimiser state, which is most of its size (kept with --keep-optimizer)."""
    if not last.is_file() or keep_optimizer:
        if last.is_file():
            LOGGER.info(f"{last}: keeps its optimiser state (--keep-optimizer): --resume --epochs N continues "
                        f"exactly")
        return
    before = last.stat().st_size
    ckpt = load_checkpoint(last)
    ckpt.update(optimizer=None, scaler=None, finished=True)
    save_checkpoint(ckpt, last)
    LOGGER.info(f"{last}: optimiser state stripped now that the run is finished ({before / 1e6:.1f} -> "
                f"{last.stat().st_size / 1e6:.1f} MB); --resume {last} --epochs N still extends the run")
