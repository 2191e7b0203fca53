"""StreamingContext lifecycle, error handling, output order and listener events (PySpark's rules)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from runnel import Context, ManualClock, StreamingContext, StreamingListener
from runnel.executors.base import TaskFailed


def noop(rdd):
    pass


# --- start / stop -------------------------------------------------------------------

def test_start_without_outputs_raises(ssc):
    ssc.queue_stream([[1]]).map(lambda x: x)
    with pytest.raises(ValueError, match="No output operations registered"):
        ssc.start()


def test_adding_streams_after_start_raises(ssc):
    s = ssc.queue_stream([[1]])
    s.foreach_rdd(noop)
    ssc.start()
    with pytest.raises(RuntimeError):
        ssc.queue_stream([[2]])
    with pytest.raises(RuntimeError):
        s.map(lambda x: x)
    with pytest.raises(RuntimeError):
        s.foreach_rdd(noop)


def test_second_start_is_a_no_op(ssc, collect):
    out = collect(ssc.queue_stream([[1], [2]]))
    ssc.start()
    ssc.start()
    ssc.run_batches(2)
    assert out == [[1], [2]]


def test_a_stopped_context_cannot_restart(ssc):
    ssc.queue_stream([[1]]).foreach_rdd(noop)
    ssc.start()
    ssc.stop(stop_spark_context=False)
    with pytest.raises(RuntimeError, match="stopped"):
        ssc.start()
    with pytest.raises(RuntimeError):
        ssc.queue_stream([[1]])


def test_stop_is_idempotent_and_works_before_start(ctx):
    never = StreamingContext(ctx, 1, clock=ManualClock())
    never.stop(stop_spark_context=False)
    never.stop(stop_spark_context=False)
    assert never.await_termination_or_timeout(0) is True
    s = StreamingContext(ctx, 1, clock=ManualClock())
    s.queue_stream([[1]]).foreach_rdd(noop)
    s.start()
    s.run_batches(1)
    s.stop(stop_spark_context=False)
    s.stop(stop_spark_context=False)
    assert s.state == "STOPPED"


def test_stop_false_keeps_the_context_usable(ssc, ctx):
    ssc.queue_stream([[1]]).foreach_rdd(noop)
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    assert not ctx.stopped
    assert ctx.parallelize([1, 2], 2).map(lambda x: x + 1).collect() == [2, 3]
    again = StreamingContext(ctx, 1, clock=ManualClock())
    out = []
    again.queue_stream([[5]]).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    again.start()
    again.run_batches(1)
    again.stop(stop_spark_context=False)
    assert out == [[5]]


def test_stop_stops_the_underlying_context_by_default():
    own = Context("local")
    s = StreamingContext(own, 1, clock=ManualClock())
    s.queue_stream([[1]]).foreach_rdd(noop)
    s.start()
    s.stop()
    assert own.stopped
    s.stop()  # still idempotent


def test_get_active(ssc):
    ssc.queue_stream([[1]]).foreach_rdd(noop)
    assert StreamingContext.get_active() is None
    ssc.start()
    assert StreamingContext.get_active() is ssc
    assert StreamingContext.get_active_or_create(None, lambda: pytest.fail("setup called")) is ssc
    ssc.stop(stop_spark_context=False)
    assert StreamingContext.get_active() is None


def test_only_one_context_is_active(ssc, ctx):
    ssc.queue_stream([[1]]).foreach_rdd(noop)
    ssc.start()
    other = StreamingContext(ctx, 1, clock=ManualClock())
    other.queue_stream([[1]]).foreach_rdd(noop)
    with pytest.raises(RuntimeError):
        other.start()
    other.stop(stop_spark_context=False)
    assert StreamingContext.get_active() is ssc


def test_await_termination_or_timeout(ssc):
    ssc.queue_stream([[1]]).foreach_rdd(noop)
    ssc.start()
    assert ssc.await_termination_or_timeout(0) is False
    assert ssc.await_termination_or_timeout(0.01) is False
    ssc.stop(stop_spark_context=False)
    assert ssc.await_termination_or_timeout(5) is True
    ssc.await_termination()  # returns at once once stopped


def test_run_batches_needs_a_manual_clock_and_an_active_context(ctx):
    s = StreamingContext(ctx, 1, clock=ManualClock())
    with pytest.raises(RuntimeError):
        s.run_batches(1)
    s.stop(stop_spark_context=False)


# --- errors -------------------------------------------------------------------------

def fail_on_two(x):
    if x == 2:
        raise ZeroDivisionError("boom at two")
    return x


@pytest.mark.parametrize("where", ["task", "output"])
def test_a_user_error_fails_only_that_batch_and_is_re_raised_later(ssc, where):
    out = []
    s = ssc.queue_stream([[1], [2], [3]])
    if where == "task":
        s.map(fail_on_two).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    else:
        s.foreach_rdd(lambda rdd: out.append([fail_on_two(x) for x in rdd.collect()]))
    other = []
    s.count().foreach_rdd(lambda rdd: other.append(rdd.collect()))
    ssc.start()
    with pytest.raises(Exception, match="boom at two"):   # after all three ran
        ssc.run_batches(3)
    assert out == [[1], [3]]  # batch 2's output failed, batch 3 still ran
    assert other == [[1], [1], [1]]  # the other output of batch 2 ran
    for _ in range(2):
        with pytest.raises(Exception, match="boom at two"):
            ssc.await_termination_or_timeout(0)
    ssc.stop(stop_spark_context=False)
    with pytest.raises(Exception, match="boom at two"):
        ssc.await_termination()
    with pytest.raises(Exception, match="boom at two"):
        ssc.await_termination_or_timeout(1)


def test_await_termination_or_timeout_returns_as_soon_as_a_batch_fails(ssc):
    ssc.queue_stream([[1], [2]]).map(fail_on_two).foreach_rdd(lambda rdd: rdd.collect())
    ssc.start()
    ssc.clock.advance(2000)                  # the runner fails batch 2 while we wait
    began = time.monotonic()
    with pytest.raises(TaskFailed, match="boom at two"):
        ssc.await_termination_or_timeout(60)
    assert time.monotonic() - began < 30     # not the full timeout
    with pytest.raises(TaskFailed, match="boom at two"):
        ssc.await_termination(timeout=60)    # likewise, and every later call re-raises


def test_stop_raises_an_error_the_program_never_saw(ssc):
    ssc.queue_stream([[1], [2]]).map(fail_on_two).foreach_rdd(lambda rdd: rdd.collect())
    ssc.start()
    ssc.clock.advance(2000)
    ssc._scheduler.wait_for_batch(2000, 30)
    with pytest.raises(TaskFailed, match="boom at two"):
        ssc.stop(stop_spark_context=False)
    assert ssc.state == "STOPPED"            # stopped all the same
    ssc.stop(stop_spark_context=False)       # reported once: a second stop is quiet
    with pytest.raises(TaskFailed, match="boom at two"):
        ssc.await_termination()              # PySpark: every await re-raises, even after stop


def test_stop_after_the_error_was_raised_is_quiet(ssc):
    ssc.queue_stream([[1], [2]]).map(fail_on_two).foreach_rdd(lambda rdd: rdd.collect())
    ssc.start()
    with pytest.raises(TaskFailed, match="boom at two"):
        ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)


FAILING_SCRIPT = """
    from runnel import ManualClock, StreamingContext

    def parse(x):
        if x == 2:
            raise ZeroDivisionError("boom at two")
        return x

    ssc = StreamingContext({master!r}, 1, clock=ManualClock())
    ssc.queue_stream([[1], [2], [3]]).map(parse).foreach_rdd(lambda rdd: rdd.collect())
    ssc.start()
    ssc.clock.advance(3000)
    ssc._scheduler.wait_for_batch(3000, 60)
    ssc.stop()
    print("script ended")
"""


@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_a_failing_task_fails_the_script_and_its_traceback_is_printed_once(master, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(FAILING_SCRIPT.format(master=master)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert done.returncode != 0 and "script ended" not in done.stdout          # stop() raised
    err = done.stderr
    assert err.count('raise ZeroDivisionError("boom at two")') == 1, err     # one traceback of the task
    assert err.count("runnel: output foreachRDD-3 failed for batch") == 1, err  # one log line, no traceback
    assert err.rstrip().splitlines()[-1].startswith("runnel.executors.base.TaskFailed: map-2 at ")


def test_an_error_in_transform_fails_that_output_only(ssc, collect):
    def bad(rdd):
        if rdd.count() == 2:
            raise KeyError("transform broke")
        return rdd
    out = collect(ssc.queue_stream([[1], [1, 2], [3]]).transform(bad))
    ssc.start()
    with pytest.raises(TaskFailed, match="transform broke"):
        ssc.run_batches(3)
    assert out == [[1], [3]]
    with pytest.raises(TaskFailed, match="transform broke") as err:  # names the output and the batch time
        ssc.await_termination_or_timeout(0)
    assert isinstance(err.value.__cause__, KeyError)


# --- outputs ----------------------------------------------------------------------------

def test_outputs_run_once_per_batch_in_definition_order(ssc):
    log = []
    s = ssc.queue_stream([[1], [2]])
    s.foreach_rdd(lambda rdd: log.append(("first", rdd.collect())))
    s.map(lambda x: -x).foreach_rdd(lambda rdd: log.append(("second", rdd.collect())))
    s.foreach_rdd(lambda t, rdd: log.append(("third", t.second)))
    ssc.start()
    ssc.run_batches(2)
    assert log == [("first", [1]), ("second", [-1]), ("third", 1),
                   ("first", [2]), ("second", [-2]), ("third", 2)]


def test_a_stream_without_output_computes_nothing(ssc, tmp_path):
    marker = tmp_path / "calls"

    def touch(x):
        with open(marker, "a") as fh:
            fh.write(".")
        return x

    s = ssc.queue_stream([[1, 2], [3]])
    s.map(touch).count()  # no output downstream
    s.foreach_rdd(noop)
    ssc.start()
    ssc.run_batches(2)
    assert not marker.exists()


def test_foreach_rdd_return_value_is_ignored(ssc):
    ssc.queue_stream([[1]]).foreach_rdd(lambda rdd: "ignored")
    ssc.start()
    ssc.run_batches(1)
    assert ssc.await_termination_or_timeout(0) is False


def test_pprint(ssc, capsys):
    from datetime import datetime
    ssc.queue_stream([list(range(12)), []]).pprint(num=10)
    ssc.start()
    ssc.run_batches(2)
    rule = "-" * 43
    lines = capsys.readouterr().out.split("\n")
    first = [rule, f"Time: {datetime.fromtimestamp(1)}", rule] + [str(i) for i in range(10)] + ["...", ""]
    second = [rule, f"Time: {datetime.fromtimestamp(2)}", rule, ""]
    assert lines == first + second + [""]


# --- listener ---------------------------------------------------------------------------

class Recorder(StreamingListener):
    def __init__(self):
        self.events = []

    def _batch(self, name, e):
        info = e.batchInfo()
        self.events.append((name, info.batchTime(), info.num_records, info.schedulingDelay(),
                            info.processingDelay(), info.totalDelay()))

    def onStreamingStarted(self, e):
        self.events.append(("started",))

    def onBatchSubmitted(self, e):
        self._batch("submitted", e)

    def onBatchStarted(self, e):
        self._batch("batch_started", e)

    def onBatchCompleted(self, e):
        self._batch("completed", e)

    def onOutputOperationStarted(self, e):
        op = e.outputOperationInfo()
        self.events.append(("op_started", op.batchTime(), op.id, op.name, op.failureReason()))

    def onOutputOperationCompleted(self, e):
        op = e.outputOperationInfo()
        assert op.startTime() is not None and op.endTime() >= op.startTime()
        reason = op.failureReason()
        self.events.append(("op_completed", op.batchTime(), op.id, op.name,
                            None if reason is None else "boom at two" in reason))


def test_listener_events(ssc):
    rec = Recorder()
    ssc.add_streaming_listener(rec)
    s = ssc.queue_stream([[1, 5], [2]])
    s.foreach_rdd(noop)
    s.map(fail_on_two).foreach_rdd(lambda rdd: rdd.collect())
    ssc.start()
    with pytest.raises(Exception, match="boom at two"):
        ssc.run_batches(2)
    ssc.remove_streaming_listener(rec)
    ev = rec.events
    assert ev[0] == ("started",) and [e for e in ev if e[0] == "started"] == [ev[0]]
    for t, n, failed in ((1000, 2, None), (2000, 1, True)):
        mine = [e for e in ev if len(e) > 1 and e[1] == t]
        assert mine == [
            ("submitted", t, n, -1, -1, -1),
            ("batch_started", t, n, 0, -1, -1),
            ("op_started", t, 0, "foreachRDD", None),
            ("op_completed", t, 0, "foreachRDD", None),
            ("op_started", t, 1, "foreachRDD", None),
            ("op_completed", t, 1, "foreachRDD", failed),
            ("completed", t, n, 0, 0, 0),
        ]
    with pytest.raises(Exception, match="boom at two"):
        ssc.await_termination_or_timeout(0)
