"""A one-line live status on the terminal: batch, input rate, delays, queued batches.

Shown only when stdout is a terminal, not in CI (the ``CI`` environment
variable), and unless ``spark.ui.showConsoleProgress`` is false. The line is
redrawn after each completed batch, in place (carriage return, erase line).

Not fighting other output (``pprint``, ``print``, logging to stdout): while
the line is shown, ``sys.stdout`` is a thin guard around the real stream
whose ``write`` first erases the status line, so other output starts at
column 0 on a clean line and the status reappears after the next batch,
below it. The line is redrawn only after a complete line of other output
(never in the middle of someone's half-written line). ``stop()`` erases it
and puts the real stdout back (unless someone replaced it meanwhile).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Mapping

from ..context import conf_flag
from ..listener import StreamingListener
from .status import PROCESSING, QUEUED, StreamingStatus

ERASE = "\r\x1b[2K"
_MIN_REDRAW = 0.1      # seconds between redraws (many tiny batches must not flood the terminal)


class _Guard:
    """sys.stdout while the progress line shows: erases the line before anything else is written."""

    def __init__(self, real: Any, progress: "ConsoleProgress"):
        self._real = real
        self._progress = progress

    def write(self, s: str) -> int:
        with self._progress.lock:
            if s:
                self._progress.erase_locked()
                self._progress.at_line_start = s.endswith("\n")
            return self._real.write(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class ConsoleProgress(StreamingListener):
    """Draws the status line after each completed batch (see the module docstring)."""

    @staticmethod
    def wanted(conf: Mapping[str, Any], stdout: Any = None) -> bool:
        """Whether to show the line: stdout a terminal, not CI, and the conf key not false."""
        out = stdout if stdout is not None else sys.stdout
        if not conf_flag(conf, "spark.ui.showConsoleProgress", True) or os.environ.get("CI"):
            return False
        try:
            return out is not None and out.isatty()
        except (AttributeError, ValueError):      # no isatty, or a closed stream
            return False

    def __init__(self, status: StreamingStatus, stdout: Any = None):
        self.status = status
        self.lock = threading.RLock()
        self._out = stdout          # None: sys.stdout at start()
        self._guard: _Guard | None = None
        self.shown = False
        self.at_line_start = True
        self._last = 0.0

    def start(self) -> None:
        with self.lock:
            if self._guard is not None:
                return
            if self._out is None:
                self._out = sys.stdout
            self._guard = _Guard(self._out, self)
            if sys.stdout is self._out:
                sys.stdout = self._guard

    def stop(self) -> None:
        with self.lock:
            if self._guard is None:
                return
            self.erase_locked()
            if sys.stdout is self._guard:
                sys.stdout = self._out
            self._guard = None

    def erase_locked(self) -> None:
        if self.shown:
            self._out.write(ERASE)
            self.shown = False

    def line(self) -> str:
        """The status line's text."""
        st = self.status
        done = st.completed()
        counts = st.counts()
        if not done:
            return f"[runnel] waiting for the first batch | queued {counts[QUEUED]}"
        last = done[-1]
        batch_ms = st.facts.batch_ms
        recent = done[-10:]
        rate = sum(b.num_records for b in recent) * 1000.0 / (len(recent) * batch_ms)
        return (f"[runnel] batch {st.totals().completed} ({last.batch_time} ms) | {rate:,.0f} rec/s | "
                f"sched {_ms(last.scheduling_delay)} | proc {_ms(last.processing_delay)} | "
                f"total {_ms(last.total_delay)} | queued {counts[QUEUED]} running {counts[PROCESSING]}")

    def onBatchCompleted(self, event) -> None:
        now = time.monotonic()
        with self.lock:
            if self._guard is None or not self.at_line_start or now - self._last < _MIN_REDRAW:
                return
            self._last = now
            text = self.line()
            width = _width(self._out)
            self._out.write(ERASE + text[:width - 1])
            self._out.flush()
            self.shown = True


def _ms(v: int | None) -> str:
    return "-" if v is None else f"{v} ms"


def _width(out: Any) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, AttributeError, ValueError):
        return 100
