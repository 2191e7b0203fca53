import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.dstream.ratecontrol import PIDRateEstimator, RateController, RateLimiter, RateSettings
from runnel.listener import BatchEvent, BatchInfo


class FakeTime:
    """A clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def limiter(rate, **kw):
    t = FakeTime()
    return RateLimiter(rate, clock=t.clock, sleep=t.sleep, **kw), t


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(1, 1e6), sizes=st.lists(st.integers(1, 10_000), min_size=1, max_size=50))
def test_a_busy_receiver_gets_exactly_the_rate(rate, sizes):
    lim, t = limiter(rate)
    for n in sizes:
        lim.acquire(n)
    assert t.now == pytest.approx(sum(sizes) / rate)        # an empty bucket at start, no overshoot


def test_an_idle_receiver_saves_at_most_one_second_of_permits():
    lim, t = limiter(100)
    t.now = 60.0                                           # idle for a minute
    assert lim.acquire(100) == 0.0                         # one second's worth passes at once
    assert lim.acquire(50) == pytest.approx(0.5)           # then the rate holds again
    t.now += 0.25
    assert lim.acquire(40) == pytest.approx(0.15)          # 25 saved in 0.25 s, 15 paid now


def test_unlimited_and_rate_changes():
    lim, t = limiter(None)
    assert lim.acquire(10**9) == 0.0 and lim.rate is None
    lim.set_rate(1000)
    assert lim.acquire(500) == pytest.approx(0.5)
    lim.set_rate(10)
    assert lim.acquire(5) == pytest.approx(0.5)
    lim.set_rate(0)                                        # 0 = unlimited, as Spark's maxRate
    assert lim.acquire(10**6) == 0.0 and t.now == pytest.approx(1.0)


def test_interrupt_ends_a_real_wait_at_once():
    lim = RateLimiter(1)                                   # real clock and sleep
    lim.acquire(1)                                         # the first permit is paid now
    waiter = threading.Thread(target=lim.acquire, args=(3600,))
    t0 = time.monotonic()
    waiter.start()
    time.sleep(0.01)
    lim.interrupt()
    waiter.join(5)
    assert not waiter.is_alive() and time.monotonic() - t0 < 5
    assert lim.acquire(10**6) == 0.0                       # a stopping receiver is not limited any more


def test_pid_estimator_matches_spark():
    # the expected values follow PIDRateEstimator.scala step by step
    est = PIDRateEstimator(1000, proportional=1.0, integral=0.2, derivative=0.0, min_rate=100)
    assert est.compute(10, 1000, 200, 0) is None           # first batch: 5,000 records/s seen
    assert est.compute(10, 1000, 200, 0) is None           # not a later batch
    assert est.compute(20, 0, 200, 0) is None              # no records: no update
    assert est.compute(20, 1000, 0, 0) is None             # no processing time: no update
    # 2,000 records/s with 500 ms scheduling delay: error 3,000, backlog 1,000 -> 5,000 - 3,000 - 200
    assert est.compute(1010, 1000, 500, 500) == pytest.approx(1800.0)
    # processed as fast as 10,000/s, no backlog: error -8,200 -> 1,800 + 8,200
    assert est.compute(2010, 1000, 100, 0) == pytest.approx(10_000.0)
    assert est.compute(3010, 10, 1000, 0) == pytest.approx(100.0)  # 10/s: floored at minRate


def test_pid_derivative_term():
    est = PIDRateEstimator(1000, proportional=0.0, integral=0.0, derivative=1.0, min_rate=1)
    est.compute(0, 1000, 1000, 0)                          # latest rate 1,000, error 0
    # error = 1,000 - 500 = 500 over 2 s: derivative 250
    assert est.compute(2000, 500, 1000, 0) == pytest.approx(750.0)


def test_settings_from_conf():
    s = RateSettings.from_conf({"spark.streaming.receiver.maxRate": "500",
                                "spark.streaming.backpressure.enabled": "True",
                                "spark.streaming.backpressure.initialRate": 2000,
                                "spark.streaming.backpressure.pid.minRate": "10"})
    assert (s.max_rate, s.backpressure, s.initial_rate, s.min_rate) == (500, True, 2000, 10)
    assert s.start_rate() == 500                            # initialRate is capped by maxRate
    assert RateSettings.from_conf({}).start_rate() is None
    assert RateSettings.from_conf({"spark.streaming.backpressure.initialRate": "50"}).start_rate() is None
    assert RateSettings.from_conf({"spark.streaming.backpressure.enabled": True,
                                   "spark.streaming.backpressure.initialRate": "50"}).start_rate() == 50
    with pytest.raises(ValueError, match="maxRate must be a number"):
        RateSettings.from_conf({"spark.streaming.receiver.maxRate": "fast"})
    with pytest.raises(ValueError, match="PID gains"):
        RateSettings.from_conf({"spark.streaming.backpressure.pid.integral": "-1"})


def test_rate_controller_feeds_completed_batches_of_its_stream():
    published = []
    ctl = RateController("receiver_stream-0", PIDRateEstimator(1000), published.append)

    def completed(t, records, start, end):
        info = BatchInfo(batch_time=t, submission_time=t, processing_start_time=start, processing_end_time=end)
        info.stream_records = {"receiver_stream-0": records, "other": 10**9}
        ctl.onBatchCompleted(BatchEvent(info))

    completed(1000, 4000, 1000, 1400)                      # 10,000/s: the starting point
    completed(2000, 4000, 2000, 3000)                      # took 1 s: 4,000/s
    assert published == [pytest.approx(4000.0)] and ctl.latest_rate == pytest.approx(4000.0)
    ctl.onBatchCompleted(BatchEvent(BatchInfo(batch_time=3000, submission_time=3000)))  # not run: ignored
    assert len(published) == 1

