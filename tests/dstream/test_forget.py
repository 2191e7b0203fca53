"""Forgetting old Datasets while the next batch's are memoised (the two scheduler threads)."""

from __future__ import annotations

import sys
import threading
import time


def test_forget_before_runs_while_another_thread_memoises_new_times(ssc):
    stream = ssc.queue_stream([[1]]).map(lambda x: x)
    stream.remember_ms = 0
    stop = threading.Event()

    def generate():                       # the scheduler thread holding the timer, memoising batch after batch
        t = 0
        while not stop.is_set():
            t += 1
            stream.generated[t] = None

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)            # switch threads as often as the interpreter can
    writer = threading.Thread(target=generate, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            for _ in range(20):
                stream.generated.setdefault(-1, None)
            stream.forget_before(max(stream.generated, default=0))
    finally:
        stop.set()
        writer.join(5)
        sys.setswitchinterval(old_interval)
    assert not writer.is_alive()
    last = max(stream.generated, default=0)   # the last forget_before may have emptied it already
    stream.forget_before(last)
    assert not [k for k in stream.generated if k <= last]


def test_an_input_forgets_its_record_counts_while_another_thread_counts_new_batches(ssc):
    stream = ssc.queue_stream([[1]])
    stream.remember_ms = 0
    stop = threading.Event()

    def generate():                       # the scheduler thread holding the timer, counting batch after batch
        t = 0
        while not stop.is_set():
            t += 1
            stream.records[t] = 1
            stream._consumed_at[t] = 0

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)            # switch threads as often as the interpreter can
    writer = threading.Thread(target=generate, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            stream.forget_before(max(stream.records, default=0))
    finally:
        stop.set()
        writer.join(5)
        sys.setswitchinterval(old_interval)
    assert not writer.is_alive()
    last = max(stream.records, default=0)
    stream.forget_before(last + 1)
    assert not [k for k in stream.records if k <= last]
