"""benchmarks/training_parity.py: which runs count as finished (so a resumed benchmark keeps them) and the report."""

from __future__ import annotations

from benchmarks.training_parity import _finished, _line


def test_a_run_is_finished_only_with_every_epoch(tmp_path):
    results = tmp_path / "results.csv"
    assert not _finished(results, 3)
    results.write_text("epoch,x\n-1,0\n0,1\n1,1\n")  # a starting row and two epochs
    assert not _finished(results, 3)
    results.write_text("epoch,x\n-1,0\n0,1\n1,1\n2,1\n")
    assert _finished(results, 3)
    results.write_text("                  epoch,x\n                  1,0\n2,1\n3,1\n")  # ultralytics' padded, 1-based
    assert _finished(results, 3)


def test_the_report_gives_each_seed_the_mean_and_the_spread():
    line = _line("here", {0: {"mAP50_95": 0.07, "mAP50": 0.15, "AP_S": 0.05},
                          1: {"mAP50_95": 0.06, "mAP50": 0.13, "AP_S": 0.04}})
    assert "mAP50_95 0.0700 / 0.0600 (mean 0.0650 ± 0.0050)" in line and "AP_S 0.0500 / 0.0400" in line
