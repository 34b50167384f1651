"""utils/distributed.py: a restarted torchrun group rendezvouses under its own prefix, so addresses the dead
group left in a surviving store are never read."""

from __future__ import annotations

from datetime import timedelta

import torch.distributed as dist

from utils.distributed import _restart_store


def test_a_restart_reads_only_its_own_keys(monkeypatch):
    server = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=timedelta(seconds=10))
    server.set("default_pg/0//cpu//rank_0", b"an address of the dead group")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(server.port))
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")  # the agent's store outlives the workers
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    store = _restart_store(1, timedelta(seconds=10))
    assert not store.check(["default_pg/0//cpu//rank_0"])
    store.set("k", b"v")
    assert server.get("yolov5-spd/restart1/k") == b"v"
