"""SIGTERM stops a running program gracefully: received data is processed, the last state checkpointed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from runnel.checkpoint import checkpoint_times

PROGRAM = textwrap.dedent("""
    import sys
    from runnel import ManualClock, StreamingContext
    from runnel.updaters import running_sum
    ssc = StreamingContext("local", 1, clock=ManualClock())
    ssc.checkpoint(sys.argv[1])
    data = [[("k", 1)] * (i + 1) for i in range(8)]
    ssc.queue_stream(data).update_state_by_key(running_sum()).foreach_rdd(
        lambda rdd: print("state", rdd.collect(), flush=True))
    ssc.start()
    ssc.run_batches(2)
    print("running", flush=True)
    ssc.await_termination()          # until SIGTERM stops it
    print("stopped", ssc.state, flush=True)
""")


def test_sigterm_drains_the_inputs_and_checkpoints(tmp_path):
    ck = str(tmp_path / "ck")
    child = subprocess.Popen([sys.executable, "-c", PROGRAM, ck], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        assert child.stdout.readline().startswith("state")
        assert child.stdout.readline().startswith("state")
        assert child.stdout.readline() == "running\n"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert lines[-1] == "stopped STOPPED"
    assert lines[-2] == "state [('k', 36)]"        # all 8 queued batches processed: 1 + 2 + ... + 8
    assert checkpoint_times(ck)[0] == 8000          # and the final state checkpointed


HANGING = textwrap.dedent("""
    import sys, time
    from runnel import ManualClock, StreamingContext
    ssc = StreamingContext("local", 1, clock=ManualClock())
    ssc.queue_stream([[1]] * 5).foreach_rdd(lambda rdd: time.sleep(3600) if rdd.collect() else None)
    ssc.start()
    print("running", flush=True)
    ssc.await_termination()
""")


def test_a_second_sigterm_terminates_a_graceful_stop_that_hangs():
    child = subprocess.Popen([sys.executable, "-c", HANGING], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        assert child.stdout.readline() == "running\n"
        child.send_signal(signal.SIGTERM)           # the graceful stop then waits for the hanging batch
        assert "SIGTERM received; stopping gracefully" in child.stderr.readline()   # handled (and reset)
        assert child.poll() is None
        child.send_signal(signal.SIGTERM)
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGTERM
