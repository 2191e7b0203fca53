"""Receiver rate control: a token-bucket limiter and Spark's PID backpressure estimator.

Configuration (``Context(conf={...})``, Spark's keys and defaults)::

    spark.streaming.receiver.maxRate            records/s per receiver; 0 or unset: unlimited
    spark.streaming.backpressure.enabled        "true": adapt each receiver's rate to the
                                                processing speed (never above maxRate)
    spark.streaming.backpressure.initialRate    the rate before the first estimate (backpressure only)
    spark.streaming.backpressure.pid.proportional / .integral / .derived / .minRate
                                                PID gains (1.0, 0.2, 0.0) and floor (100 records/s)

Flow: a receiver's ``store`` asks the :class:`RateLimiter` for permits (and
waits for them); after every batch the :class:`RateController` (a streaming
listener) feeds the batch's records, processing and scheduling delays to a
:class:`PIDRateEstimator` and sets the limiter's rate to the estimate.

Both classes take an injectable time source, so tests run on fake time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..context import conf_flag
from ..listener import StreamingListener

__all__ = ["RateLimiter", "PIDRateEstimator", "RateController", "RateSettings"]

MAX_RATE = "spark.streaming.receiver.maxRate"
BACKPRESSURE = "spark.streaming.backpressure.enabled"
INITIAL_RATE = "spark.streaming.backpressure.initialRate"
_PID = "spark.streaming.backpressure.pid."


def _conf_float(conf: Mapping[str, Any], key: str, default: float) -> float:
    value = conf.get(key)
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class RateSettings:
    """The rate-control conf of a context; rates in records/s, ``None`` = unlimited."""

    max_rate: float | None = None
    backpressure: bool = False
    initial_rate: float | None = None
    proportional: float = 1.0
    integral: float = 0.2
    derivative: float = 0.0
    min_rate: float = 100.0

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> "RateSettings":
        max_rate = _conf_float(conf, MAX_RATE, 0.0)
        initial = _conf_float(conf, INITIAL_RATE, 0.0)
        s = cls(max_rate=max_rate if max_rate > 0 else None, backpressure=conf_flag(conf, BACKPRESSURE),
                initial_rate=initial if initial > 0 else None,
                proportional=_conf_float(conf, _PID + "proportional", 1.0),
                integral=_conf_float(conf, _PID + "integral", 0.2),
                derivative=_conf_float(conf, _PID + "derived", 0.0),
                min_rate=_conf_float(conf, _PID + "minRate", 100.0))
        if min(s.proportional, s.integral, s.derivative) < 0 or s.min_rate <= 0:
            raise ValueError(f"the backpressure PID gains must be >= 0 and minRate > 0, got {s}")
        return s

    def start_rate(self) -> float | None:
        """The limiter's first rate: initialRate (with backpressure) capped by maxRate, as Spark."""
        rates = [r for r in (self.max_rate, self.initial_rate if self.backpressure else None) if r]
        return min(rates) if rates else None


class RateLimiter:
    """A token bucket: ``acquire(n)`` waits until n more records fit the rate.

    Parameters
    ----------
    rate : float or None
        Records per second; ``None`` or <= 0 means unlimited.
    burst_seconds : float
        Unused permits saved while idle, in seconds of the rate (Guava's
        SmoothBursty, which Spark uses, saves one second).
    clock : callable
        Seconds, monotonic (``time.monotonic``).
    sleep : callable
        ``sleep(seconds)``; by default a wait that :meth:`interrupt` ends.

    A caller waits until *its own* records are paid for (Guava lets a request
    through and makes the next caller pay): storing a block of n records
    takes n / rate seconds, so a block never overshoots the rate.

    Examples
    --------
    >>> now = [0.0]
    >>> lim = RateLimiter(100, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    >>> lim.acquire(50), lim.acquire(100)
    (0.5, 1.0)
    """

    def __init__(self, rate: float | None = None, *, burst_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] | None = None):
        self._clock = clock
        self._halt = threading.Event()
        self._sleep = sleep if sleep is not None else self._halt.wait
        self._burst = burst_seconds
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._stored = 0.0                 # saved permits (an idle bucket refills up to rate * burst)
        self._next_free = clock()          # when the permits handed out so far are paid for
        self.set_rate(rate)

    @property
    def rate(self) -> float | None:
        """Records per second, ``None`` when unlimited."""
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        """Change the rate (``None`` or <= 0: unlimited); waits already begun keep their length."""
        with self._lock:
            self._refill(self._clock())
            self._rate = float(rate) if rate is not None and rate > 0 else None
            self._stored = min(self._stored, self._max_stored())

    def _max_stored(self) -> float:
        return 0.0 if self._rate is None else self._rate * self._burst

    def _refill(self, now: float) -> None:
        if now > self._next_free:
            if self._rate is not None:
                self._stored = min(self._max_stored(), self._stored + (now - self._next_free) * self._rate)
            self._next_free = now

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` permits, waiting until they are paid for; returns the seconds waited."""
        if n <= 0 or self._halt.is_set():
            return 0.0
        with self._lock:
            if self._rate is None:
                return 0.0
            now = self._clock()
            self._refill(now)
            saved = min(float(n), self._stored)
            self._stored -= saved
            self._next_free += (n - saved) / self._rate
            wait = self._next_free - now
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def interrupt(self) -> None:
        """End current waits (with the default sleep) and stop limiting: the receiver is stopping."""
        self._halt.set()


class PIDRateEstimator:
    """Spark's PIDRateEstimator: a new rate from each completed batch.

    The error is the gap between the current rate and the rate the last
    batch was processed at; the integral term is the backlog (scheduling
    delay x processing rate / batch interval); the estimate never falls
    below ``min_rate``. The first batch only sets the starting point.

    Examples
    --------
    >>> est = PIDRateEstimator(1000)
    >>> est.compute(1000, 10_000, 500, 0) is None     # first batch: 20,000 records/s seen
    True
    >>> est.compute(2000, 10_000, 1000, 0)            # then 10,000 records/s: rate falls to it
    10000.0
    """

    def __init__(self, batch_interval_ms: int, proportional: float = 1.0, integral: float = 0.2,
                 derivative: float = 0.0, min_rate: float = 100.0):
        if batch_interval_ms <= 0:
            raise ValueError(f"batch interval must be positive, got {batch_interval_ms!r}")
        self.batch_interval_ms = batch_interval_ms
        self.proportional, self.integral, self.derivative, self.min_rate = proportional, integral, derivative, min_rate
        self._lock = threading.Lock()
        self._first = True
        self._latest_time = -1
        self._latest_rate = -1.0
        self._latest_error = -1.0

    def compute(self, time_ms: int, records: int, processing_delay_ms: int,
                scheduling_delay_ms: int) -> float | None:
        """The new rate (records/s) after a batch that ended at ``time_ms``, or None (no update)."""
        with self._lock:
            if not (time_ms > self._latest_time and records > 0 and processing_delay_ms > 0):
                return None
            since_update = (time_ms - self._latest_time) / 1000.0
            processing_rate = records / processing_delay_ms * 1000.0
            error = self._latest_rate - processing_rate
            historical_error = scheduling_delay_ms * processing_rate / self.batch_interval_ms
            d_error = (error - self._latest_error) / since_update
            new_rate = max(self._latest_rate - self.proportional * error - self.integral * historical_error
                           - self.derivative * d_error, self.min_rate)
            self._latest_time = time_ms
            if self._first:
                self._latest_rate, self._latest_error, self._first = processing_rate, 0.0, False
                return None
            self._latest_rate, self._latest_error = new_rate, error
            return new_rate


class RateController(StreamingListener):
    """Backpressure of one input stream: each completed batch updates the stream's rate.

    ``publish(rate)`` receives every new estimate (Spark's RateController
    sends it to the stream's receivers).
    """

    def __init__(self, stream_name: str, estimator: PIDRateEstimator, publish: Callable[[float], None]):
        self.stream_name = stream_name
        self.estimator = estimator
        self.publish = publish
        self.latest_rate: float | None = None

    def onBatchCompleted(self, batchCompleted) -> None:  # noqa: N802 — StreamingListener's name
        info = batchCompleted.batch_info
        if info.processing_end_time is None or info.processing_delay is None or info.scheduling_delay is None:
            return
        rate = self.estimator.compute(info.processing_end_time, info.stream_records.get(self.stream_name, 0),
                                      info.processing_delay, info.scheduling_delay)
        if rate is not None:
            self.latest_rate = rate
            self.publish(rate)
