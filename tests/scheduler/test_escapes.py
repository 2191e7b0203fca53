"""Whatever escapes user code or a listener on a scheduler thread never wedges the scheduler.

A ``BaseException`` that is not an ``Exception`` (``SystemExit`` from
``sys.exit()`` in a function, ``pytest.fail`` in a listener, an
``asyncio.CancelledError``) used to escape the scheduler's handlers: the
batch stayed "running" (or generating) for ever, every later batch waited
behind it and a graceful stop never returned. Each test here drives batches
with the manual clock and bounded waits: before the fixes each one timed out.
"""

from __future__ import annotations

import logging

import pytest

from runnel import Context, ManualClock, StreamingContext, StreamingListener

WAIT = 10          # seconds any wait in these tests may take at most


class Escape(BaseException):
    """Not an Exception: what ``except Exception`` lets through."""


@pytest.fixture(scope="module")
def lctx():
    c = Context("local")
    yield c
    c.stop()


def _ssc(lctx, output):
    ssc = StreamingContext(lctx, 1, clock=ManualClock())
    ssc.queue_stream([[1], [2], [3]]).foreach_rdd(output)
    return ssc


def _stop(ssc, graceful=False):
    """Stop (bounded: a wedged graceful stop would wait for ever); did the scheduler stop in time?"""
    try:
        ssc._scheduler.stop(graceful=graceful, timeout=WAIT)
        return ssc._scheduler.core.terminated
    finally:
        ssc._stop(stop_spark_context=False)     # the context too (a wedged batch: waited for 30 s at most)


@pytest.mark.parametrize("raised", [Escape("out of the job"), SystemExit(3)], ids=["BaseException", "SystemExit"])
def test_a_job_raising_a_base_exception_fails_its_batch_only(lctx, raised):
    seen = []

    def output(rdd):
        got = rdd.collect()
        if got == [2]:
            raise raised
        seen.append(got)

    ssc = _ssc(lctx, output)
    ssc.start()
    try:
        ssc.run_batches(1, timeout=WAIT)
        with pytest.raises(type(raised)) as err:
            ssc.run_batches(1, timeout=WAIT)
        assert err.value is raised
        ssc.run_batches(1, timeout=WAIT)        # the next batch runs
        assert seen == [[1], [3]]
        info = ssc._scheduler.batch_info(2000)
        assert "out of the job" in info.output_operation_infos[0].failure_reason or isinstance(raised, SystemExit)
    finally:
        assert _stop(ssc, graceful=True)
    with pytest.raises(type(raised)):           # never seen by await_termination: the error stays reported
        ssc.await_termination_or_timeout(0)


@pytest.mark.parametrize("callback", ["onBatchSubmitted", "onBatchStarted", "onOutputOperationStarted",
                                      "onOutputOperationCompleted", "onBatchCompleted"])
def test_a_listener_raising_a_base_exception_is_logged_and_batches_go_on(lctx, callback, caplog):
    seen = []

    class Raising(StreamingListener):
        pass

    def raise_it(self, event):
        raise Escape(f"{callback} raised")

    setattr(Raising, callback, raise_it)
    ssc = _ssc(lctx, lambda rdd: seen.append(rdd.collect()))
    ssc.add_streaming_listener(Raising())
    ssc.start()
    with caplog.at_level(logging.ERROR):
        try:
            ssc.run_batches(3, timeout=WAIT)
        finally:
            assert _stop(ssc, graceful=True)
    assert seen == [[1], [2], [3]]
    assert f"raised in {callback}" in caplog.text and f"{callback} raised" in caplog.text   # the bus reports it
    assert "internal error" not in caplog.text            # it did not escape into the scheduler


def test_a_transform_raising_a_base_exception_loses_its_batch_only(lctx):
    seen = []

    def transform(rdd):
        if rdd.collect() == [2]:
            raise Escape("out of the transform")
        return rdd

    ssc = StreamingContext(lctx, 1, clock=ManualClock())
    ssc.queue_stream([[1], [2], [3]]).transform(transform).foreach_rdd(lambda rdd: seen.append(rdd.collect()))
    ssc.start()
    try:
        ssc.run_batches(1, timeout=WAIT)
        with pytest.raises(Escape):
            ssc.run_batches(1, timeout=WAIT)
        ssc.run_batches(1, timeout=WAIT)
        assert seen == [[1], [3]]
    finally:
        assert _stop(ssc, graceful=True)


def test_an_internal_error_while_a_batch_runs_completes_it_as_failed(lctx, monkeypatch, caplog):
    """The safety net: anything escaping the running batch outside its jobs (here: settling state) fails
    that batch (its error reported as the batch's), and the next batches run."""
    seen = []
    ssc = _ssc(lctx, lambda rdd: seen.append(rdd.collect()))
    settle = ssc.graph.settle

    def failing_settle(t):
        if t == 2000:
            raise Escape("settling broke")
        return settle(t)

    monkeypatch.setattr(ssc.graph, "settle", failing_settle)
    ssc.start()
    try:
        ssc.run_batches(1, timeout=WAIT)
        with caplog.at_level(logging.ERROR), pytest.raises(Escape):
            ssc.run_batches(1, timeout=WAIT)
        assert "internal error running batch 2000" in caplog.text
        ssc.run_batches(1, timeout=WAIT)
        assert seen == [[1], [2], [3]]
        info = ssc._scheduler.batch_info(2000)
        assert info.processing_end_time is not None
    finally:
        assert _stop(ssc, graceful=True)


def test_an_instruction_that_raises_after_a_batch_completed_still_ends_the_threads(lctx, monkeypatch):
    """Forgetting old Datasets raised once in a loaded run ('dictionary changed size'): the instructions after
    it (the completed event, waking the waiters, ending the threads of a stop) were skipped, so a stop
    waiting for that batch waited for ever and the scheduler threads never ended."""
    completed = []

    class Completed(StreamingListener):
        def onBatchCompleted(self, e):
            completed.append(e.batch_info.batch_time)

    ssc = _ssc(lctx, lambda rdd: rdd.collect())
    ssc.add_streaming_listener(Completed())
    forget = ssc.graph.forget_before

    def failing_forget(t):
        if t == 3000:                              # the last batch a graceful stop drains
            raise RuntimeError("dictionary changed size during iteration")
        forget(t)

    monkeypatch.setattr(ssc.graph, "forget_before", failing_forget)
    ssc.start()
    threads = ssc._scheduler._threads
    ssc.run_batches(1, timeout=WAIT)
    assert _stop(ssc, graceful=True)               # drains batches 2000 and 3000
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert completed == [1000, 2000, 3000]


def test_a_start_that_fails_posts_no_streaming_started(lctx, monkeypatch):
    started = []

    class Started(StreamingListener):
        def onStreamingStarted(self, e):
            started.append(e)

    ssc = _ssc(lctx, lambda rdd: rdd.collect())
    ssc.add_streaming_listener(Started())
    monkeypatch.setattr(ssc.graph, "start", lambda zero: (_ for _ in ()).throw(RuntimeError("no start")))
    with pytest.raises(RuntimeError, match="no start"):
        ssc.start()
    assert started == [] and ssc.state == "INITIALIZED"
