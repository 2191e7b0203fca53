"""The console progress line: only on a terminal, never in CI, and never in the way of pprint."""

from __future__ import annotations

import io
import sys

from runnel import ManualClock, StreamingContext
from runnel.ui.progress import ERASE, ConsoleProgress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wanted_only_on_a_terminal_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert ConsoleProgress.wanted({}, FakeTTY())
    assert not ConsoleProgress.wanted({}, io.StringIO())                       # not a terminal
    assert not ConsoleProgress.wanted({"spark.ui.showConsoleProgress": "false"}, FakeTTY())
    monkeypatch.setenv("CI", "true")
    assert not ConsoleProgress.wanted({}, FakeTTY())


def test_progress_line_and_pprint_share_the_terminal(ctx, clean_conf, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("runnel.ui.progress._MIN_REDRAW", 0.0)    # redraw after every batch
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.queue_stream([[1, 2], [3], [4]]).pprint()
    ssc.start()
    try:
        assert sys.stdout is not tty          # the guard is in place while the line may show
        ssc.run_batches(3)
    finally:
        ssc.stop(stop_spark_context=False)
    assert sys.stdout is tty                  # put back at stop
    out = tty.getvalue()
    segments = out.split(ERASE)
    lines = [seg for seg in segments if seg.startswith("[runnel]")]
    assert len(lines) == 3 and lines[0] == "[runnel] batch 1 (1000 ms) | 2 rec/s | sched 0 ms | proc 0 ms | " \
        "total 0 ms | queued 0 running 0"
    # a status line is always erased before anything else is written: nothing follows it in its segment
    assert all(seg.startswith("[runnel]") == ("[runnel]" in seg) for seg in segments)
    assert all("\n" not in seg for seg in lines)
    # without the status lines, pprint's output is intact
    plain = "".join(seg for seg in segments if not seg.startswith("[runnel]"))
    assert plain.count("Time: ") == 3 and "-\n1\n2\n\n" in plain and "-\n3\n\n" in plain and "-\n4\n\n" in plain
    assert out.endswith(ERASE)                # the last line erased at stop


def test_not_shown_when_stdout_is_not_a_terminal(ctx, clean_conf, monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.queue_stream([[1]]).pprint()
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    out = capsys.readouterr().out
    assert "[runnel]" not in out and ERASE not in out and "Time:" in out


def test_half_written_lines_are_not_interrupted():
    from runnel.ui.status import JobFacts, StreamingStatus
    tty = FakeTTY()
    p = ConsoleProgress(StreamingStatus(JobFacts("a", "local", 1000, {})), stdout=tty)
    p.start()
    guard = p._guard
    guard.write("partial")
    p.onBatchCompleted(None)            # mid-line: no redraw
    assert tty.getvalue() == "partial"
    guard.write(" line\n")
    p.onBatchCompleted(None)
    assert tty.getvalue().endswith(ERASE + "[runnel] waiting for the first batch | queued 0")
    guard.write("x\n")
    assert tty.getvalue().endswith("queued 0" + ERASE + "x\n")
    p.stop()                            # nothing shown: nothing to erase
    assert tty.getvalue().endswith("queued 0" + ERASE + "x\n")
