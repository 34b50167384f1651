"""The training progress of one epoch: a header row naming the columns, then the values under it. On a
terminal a live bar (tqdm); in a log file (not a terminal) one whole line per update, every tenth of the epoch
and at its end, so the lines never run into each other."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

WIDTH = 11  # characters per column
LOG_UPDATES = 10  # lines per epoch in a log file


class EpochProgress:
    """``update(values)`` after each batch; ``close()`` at the end. ``columns`` name the values."""

    def __init__(self, total: int, columns: list[str], enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.columns, self.enabled = total, columns, enabled
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.done, self.start = 0, time.perf_counter()
        self.next_line = 0
        if not enabled:
            self.bar = None
            return
        self._write(self.header())
        self.bar = tqdm(total=total, file=self.stream, bar_format="{desc}{percentage:3.0f}%|{bar:10}| "
                        "{n_fmt}/{total_fmt} [{elapsed}<{remaining}]") if self.live else None

    def header(self) -> str:
        """The column names, right-aligned to the values' widths."""
        return "".join(f"{c:>{WIDTH}}" for c in self.columns)

    def row(self, values: list[str]) -> str:
        """The values, aligned under the header."""
        return "".join(f"{v:>{WIDTH}}" for v in values)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, values: list[str]) -> None:
        """One batch done; ``values`` as the columns."""
        if not self.enabled:
            return
        self.done += 1
        if self.bar is not None:
            self.bar.set_description_str(self.row(values) + " ", refresh=False)
            self.bar.update(1)
        elif self.done >= self.next_line or self.done == self.total:
            elapsed = time.perf_counter() - self.start
            self._write(f"{self.row(values)}  {self.done:>5}/{self.total} {100 * self.done / self.total:3.0f}% "
                        f"{elapsed:6.1f} s")
            self.next_line = self.done + -(-self.total // LOG_UPDATES)

    def close(self) -> None:
        """End the bar (a terminal's line stays)."""
        if self.bar is not None:
            self.bar.close()
