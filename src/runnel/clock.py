"""Clocks that drive batch generation.

Batch times are integer milliseconds on a grid of the batch interval. The
``SystemClock`` follows wall time; the ``ManualClock`` only moves when a test
(or :mod:`runnel.testing`) advances it, so tests never sleep.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Time source in milliseconds; ``wait_until`` blocks until a time or a stop."""

    def now(self) -> int:
        raise NotImplementedError

    def wait_until(self, target_ms: int, stop: threading.Event) -> bool:
        """Block until ``now() >= target_ms`` (True) or ``stop`` is set (False)."""
        raise NotImplementedError

    def wake(self) -> None:
        """Wake waiters so they re-check their stop event."""

    def seconds_until(self, target_ms: int) -> float | None:
        """How long a waiter for ``target_ms`` on its own condition may sleep before looking at the
        clock again; None: until woken, because a clock whose time jumps tells its subscribers."""
        return None

    def subscribe(self, fn) -> None:
        """Call ``fn()`` after every jump of the time (a ManualClock's advance); no-op otherwise."""

    def unsubscribe(self, fn) -> None:
        """Stop calling ``fn`` (no error when it was not subscribed)."""


class SystemClock(Clock):
    def now(self) -> int:
        return int(time.time() * 1000)

    def seconds_until(self, target_ms: int) -> float | None:
        return max(0.0, (target_ms - self.now()) / 1000.0)

    def wait_until(self, target_ms: int, stop: threading.Event) -> bool:
        while True:
            delay = (target_ms - self.now()) / 1000.0
            if delay <= 0:
                return True
            if stop.wait(min(delay, 0.5)):
                return False


class ManualClock(Clock):
    """A clock that moves only when told to.

    Examples
    --------
    >>> c = ManualClock()
    >>> c.advance(1000); c.now()
    1000
    """

    def __init__(self, start_ms: int = 0):
        self._now = int(start_ms)
        self._cond = threading.Condition()
        self._subscribers: tuple = ()

    def now(self) -> int:
        with self._cond:
            return self._now

    def advance(self, ms: int | float) -> None:
        """Move time forward by ``ms`` milliseconds."""
        if ms < 0:
            raise ValueError(f"a clock cannot go back (advance by {ms} ms)")
        with self._cond:
            self._now += int(ms)
            self._cond.notify_all()
        for fn in self._subscribers:
            fn()

    def set_time(self, ms: int) -> None:
        with self._cond:
            if ms < self._now:
                raise ValueError(f"a clock cannot go back (from {self._now} to {ms} ms)")
            self._now = int(ms)
            self._cond.notify_all()
        for fn in self._subscribers:
            fn()

    def subscribe(self, fn) -> None:
        with self._cond:
            self._subscribers = self._subscribers + (fn,)

    def unsubscribe(self, fn) -> None:
        with self._cond:
            self._subscribers = tuple(f for f in self._subscribers if f != fn)

    def wait_until(self, target_ms: int, stop: threading.Event) -> bool:
        with self._cond:
            while self._now < target_ms:
                if stop.is_set():
                    return False
                self._cond.wait(0.05)
            return not stop.is_set()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


_MANUAL_CLOCK_NAMES = ("org.apache.spark.util.ManualClock", "ManualClock", "manual")


def clock_from_conf(conf: dict) -> Clock | None:
    """Spark's ``spark.streaming.clock`` setting: a ManualClock when it names one."""
    return ManualClock() if conf.get("spark.streaming.clock") in _MANUAL_CLOCK_NAMES else None
