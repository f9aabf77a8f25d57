"""Progress output: a live bar on a terminal, plain lines in logs and pipes.

A clerk watching a 20-minute import needs to see it move; a cron log needs a few
readable lines, not thousands of carriage returns. Output goes to stderr so the
summary on stdout stays clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BAR_WIDTH = 30
_MIN_INTERVAL_S = 0.2


class Progress:
    """Reports phases and a running feature count; silent when ``enabled`` is False."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._total: int | None = None
        self._label = ""
        self._done = 0
        self._last = 0.0
        self._started = time.monotonic()

    def phase(self, text: str) -> None:
        """A new step ("reading", "validating", "merging")."""
        if not self.enabled:
            return
        self._end_bar()
        self.stream.write(f"{text}\n")
        self.stream.flush()

    def start(self, label: str, total: int | None) -> None:
        """Begin counting features of one source (total may be unknown)."""
        self._label, self._total, self._done = label, total, 0
        self._started = time.monotonic()
        self.phase(f"{label}: {total if total is not None else 'unknown number of'} features")

    def advance(self, count: int) -> None:
        self._done += count
        if not self.enabled or not self.tty:
            return
        now = time.monotonic()
        if now - self._last < _MIN_INTERVAL_S:
            return
        self._last = now
        self.stream.write("\r" + self._bar_text(now))
        self.stream.flush()

    def finish(self) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._end_bar()
        self.stream.write(
            f"{self._label}: {self._done} features read ({self._done / elapsed:,.0f}/s)\n"
        )
        self.stream.flush()

    def _bar_text(self, now: float) -> str:
        rate = self._done / max(now - self._started, 1e-6)
        if not self._total:
            return f"{self._label}: {self._done} features ({rate:,.0f}/s)"
        share = min(self._done / self._total, 1.0)
        filled = int(share * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        return f"{self._label} [{bar}] {share:4.0%} {self._done}/{self._total} ({rate:,.0f}/s)"

    def _end_bar(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self._last = 0.0
