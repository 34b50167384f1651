"""The shared start-up of the command-line faces (utils/engine/command_line.py)."""

import pytest

from utils.engine.command_line import SPIN_BEFORE_SLEEP, prefer_sleeping_threads


@pytest.mark.parametrize("chosen", [{}, {"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}])
def test_threads_spin_briefly_then_sleep_unless_either_variable_is_set(monkeypatch, chosen):
    import os

    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in chosen.items():
        monkeypatch.setenv(name, value)
    prefer_sleeping_threads()
    expected = chosen or {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": SPIN_BEFORE_SLEEP}
    assert {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ} == expected
