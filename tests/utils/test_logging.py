"""utils/logging.py: live progress bars only on a terminal (a log file would get carriage returns)."""

import io
import sys

from utils.logging import live_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not live_progress()
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert live_progress() and not live_progress(False)
