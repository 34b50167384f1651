"""utils/engine/progress.py: a header row, then whole lines in a log file (about ten per epoch), aligned."""

from __future__ import annotations

import io

from utils.engine.progress import EpochProgress


def test_log_files_get_a_header_and_whole_aligned_lines():
    stream = io.StringIO()
    bar = EpochProgress(95, ["epoch", "memory", "box", "images"], stream=stream)
    for i in range(95):
        bar.update(["1/3", "cpu", f"{1 / (i + 1):.4f}", "16"])
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].split() == ["epoch", "memory", "box", "images"]
    assert 9 <= len(lines) - 1 <= 11 and "\r" not in stream.getvalue()
    assert lines[-1].split()[:4] == ["1/3", "cpu", "0.0105", "16"] and "95/95" in lines[-1]
    assert all(line.index("cpu") + 3 == lines[0].index("memory") + 6 for line in lines[1:])  # right-aligned


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    bar = EpochProgress(10, ["epoch"], enabled=False, stream=stream)
    bar.update(["1/1"])
    bar.close()
    assert stream.getvalue() == ""
