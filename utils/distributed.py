"""Everything distributed in one place: device choice, process groups under torchrun, rank helpers."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist


def select_device(device: str = "") -> torch.device:
    """'' -> CUDA when present else CPU; 'cpu'; '0' or '0,1' -> CUDA (the local rank's GPU under DDP)."""
    device = str(device).strip().lower().replace("cuda:", "")
    if device == "cpu" or (not device and not torch.cuda.is_available()):
        return torch.device("cpu")
    if device and not all(part.strip().isdigit() for part in device.split(",")):
        raise ValueError(f"--device {device}: expected cpu, a GPU index (0) or a list (0,1)")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return torch.device("cuda", local_rank() if world_size() > 1 else int((device or "0").split(",")[0]))


def world_size() -> int:
    """The number of processes of this run (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    """This process's global rank (0 without torchrun)."""
    return int(os.environ.get("RANK", 0))


def local_rank() -> int:
    """This process's rank on its machine (0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    """Whether this is rank 0, the process that logs and writes files."""
    return rank() == 0


def init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group (gloo on CPU, NCCL on CUDA). False when not launched by torchrun."""
    if world_size() == 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        timeout = timedelta(minutes=30)
        restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
        if restart:  # a restarted group: its keys apart from those the dead group left in a surviving store
            dist.init_process_group(backend, store=_restart_store(restart, timeout), rank=rank(),
                                    world_size=world_size(), timeout=timeout)
        else:
            dist.init_process_group(backend, timeout=timeout)
    return True


def _restart_store(restart: int, timeout: timedelta) -> dist.Store:
    """The rendezvous store of torchrun's ``restart``-th attempt, under a prefix of its own: reading the workers'
    addresses a dead attempt wrote would make Gloo connect to processes that no longer exist."""
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size(),
                          is_master=not agent_hosts_it and rank() == 0, timeout=timeout)
    return dist.PrefixStore(f"yolov5-spd/restart{restart}", store)


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process of the group (nothing without one)."""
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def main_process_first():
    """Rank 0 runs the block (e.g. dataset scan and cache) before the others."""
    if not is_main_process():
        barrier()
    yield
    if is_main_process():
        barrier()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (e.g. early stop) reaches every rank."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes (``tensor`` itself without a group)."""
    if not dist.is_initialized():
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor)
    return tensor / dist.get_world_size()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DDP / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
