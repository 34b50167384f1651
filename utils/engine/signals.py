"""SIGINT / SIGTERM during training: finish the step, save last.pt, exit."""

from __future__ import annotations

import signal


class SignalFlag:
    """SIGINT/SIGTERM: finish the current step, save last.pt, exit."""

    def __init__(self) -> None:
        self.raised: int | None = None
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, _frame) -> None:
        if self.raised is not None:  # a second signal: leave at once
            raise KeyboardInterrupt
        self.raised = signum

    def restore(self) -> None:
        """Put back the signal handlers that were there before."""
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
