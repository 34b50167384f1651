"""The per-phase time table: exclusive nesting, the 'other' remainder, a disabled timer, a real run's table."""

import types

from utils.engine import phase_timer
from utils.engine.phase_timer import PhaseTimer


def _fake_clock(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(phase_timer, "time", types.SimpleNamespace(perf_counter=lambda: clock["t"]))
    return clock


def test_nested_phases_are_taken_out_of_the_outer_one(monkeypatch):
    clock = _fake_clock(monkeypatch)
    timer = PhaseTimer()
    with timer("forward"):
        clock["t"] += 2
        with timer("loss"):
            clock["t"] += 3
        clock["t"] += 1
    with timer("data"):
        clock["t"] += 4
    assert timer.totals == {"forward": 3, "loss": 3, "data": 4}
    table = timer.table(12.0)
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [r[0] for r in rows] == ["data", "forward", "loss", "other"]  # the loop's order, then the rest
    assert rows[-1][1] == "2.0" and "12.0 s in all" in table


def test_a_disabled_timer_records_nothing_and_an_exception_still_closes_the_phase(monkeypatch):
    clock = _fake_clock(monkeypatch)
    off = PhaseTimer(enabled=False)
    with off("forward"):
        clock["t"] += 1
    assert not off.totals
    timer = PhaseTimer()
    try:
        with timer("backward"):
            clock["t"] += 5
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with timer("data"):
        clock["t"] += 1
    assert timer.totals == {"backward": 5, "data": 1}


def test_a_training_run_ends_with_its_time_table(tmp_path):
    from tests.utils.engine.test_trainer import ToyTask, _config
    from utils.engine.trainer import Trainer

    Trainer(_config(tmp_path, epochs=2), ToyTask()).run()
    table = (tmp_path / "exp" / "time_per_phase.txt").read_text()
    for phase in ("setup", "data", "forward", "backward", "optimiser + EMA", "checkpoints", "final evaluation"):
        assert f"  {phase} " in table, phase
    seconds = [float(line.split()[-4]) for line in table.splitlines()[1:]]
    total = float(table.split("(")[1].split(" s")[0])
    assert abs(sum(seconds) - total) < 0.05 * total + 0.2  # the rows add up to the wall time
