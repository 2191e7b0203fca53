"""Every ```python block of the README runs as printed.

Each block runs in a fresh interpreter (a hung block fails after
``BLOCK_TIMEOUT`` instead of hanging the suite) in an empty working
directory, with two changes that keep it short and self-contained, and no
others:

* a block reading ``localhost:9999`` (where the README tells the user to run
  ``nc -lk 9999`` or ``python -m runnel.examples.line_server``) reads from a
  :class:`LineServer` on a free port instead, the literal port replaced;
* a block using an MQTT broker at ``localhost:1883`` gets a mosquitto of its
  own on a free port (``tests/mqtt/broker.py``: skipped where there is none,
  installed under CI), the literal port replaced;
* waiting for termination (``await_termination*``, ``awaitTermination*``)
  lasts at most ``RUN_SECONDS`` of wall clock — in a block that calls
  ``pprint``, until a batch that brought records completed instead (at most
  ``RUN_MAX_SECONDS``: a loaded machine may take longer than RUN_SECONDS to
  start the stream, an idle one much less) — and a context still active
  when the block ends is stopped.

A block that calls ``pprint`` must have printed at least one batch with a
record in it, so a block that never starts its stream fails.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import subprocess
import sys

import pytest

from runnel.examples.line_server import LineServer

sys.path.insert(0, str(pathlib.Path(__file__).parent / "mqtt"))
from broker import Mosquitto, mosquitto_or_skip  # noqa: E402 — a helper of the MQTT tests

README = pathlib.Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
RUN_SECONDS = 4.0
RUN_MAX_SECONDS = 90.0
BLOCK_TIMEOUT = 180

HARNESS = """
import sys
import threading
from runnel import StreamingContext, StreamingListener

RUN, RUN_MAX, NEED_RECORDS = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
_wait = StreamingContext.await_termination_or_timeout
_start = StreamingContext.start
_records = threading.Event()     # a batch that brought records completed (its outputs printed)


class _Seen(StreamingListener):
    def onBatchCompleted(self, e):
        if e.batch_info.num_records:
            _records.set()


def _started(self, *args, **kwargs):
    self.add_streaming_listener(_Seen())
    return _start(self, *args, **kwargs)


def _short(self, timeout=None):
    if not NEED_RECORDS:
        return _wait(self, RUN if timeout is None else min(timeout, RUN))
    waited, stopped = 0.0, False    # until a batch with records ran, however loaded the machine is
    while not _records.is_set() and not stopped and waited < RUN_MAX:
        stopped = _wait(self, 0.1)
        waited += 0.1
    return stopped


StreamingContext.start = _started
for name in ("await_termination", "awaitTermination", "await_termination_or_timeout", "awaitTerminationOrTimeout"):
    setattr(StreamingContext, name, _short)
exec(compile(sys.stdin.read(), "README.md", "exec"), {"__name__": "__main__"})
active = StreamingContext.get_active()
if active is not None:
    active.stop()
"""


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5, "the README lost its examples (or this test's pattern no longer finds them)"


def _title(block: str) -> str:
    return next(line for line in block.splitlines() if line.strip())[:60]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{i}:{_title(b)}" for i, b in enumerate(BLOCKS)])
def test_readme_block_runs(block, tmp_path):
    with LineServer(lines_per_second=200) as server, contextlib.ExitStack() as stack:
        code = block.replace("9999", str(server.port))
        if "localhost:1883" in block:
            broker = Mosquitto(mosquitto_or_skip(), str(tmp_path / "mosquitto")).start()
            stack.callback(broker.stop)
            code = code.replace("1883", str(broker.port))
        done = subprocess.run([sys.executable, "-c", HARNESS, str(RUN_SECONDS), str(RUN_MAX_SECONDS),
                               "1" if ".pprint(" in block else "0"], input=code, cwd=tmp_path,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    assert done.returncode == 0, f"the README block failed:\n{block}\n--- stderr:\n{done.stderr[-4000:]}"
    if ".pprint(" in block:
        printed = [b for b in done.stdout.split("Time: ")[1:] if b.split("\n", 2)[2].strip(" -\n.")]
        assert printed, f"the block printed no batch with a record in it:\n{done.stdout[-2000:]}"


def test_ci_runs_the_readme_test_command():
    """``.ci/run`` is exactly the README's test command (what a contributor runs is what CI runs)."""
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci.startswith("python3 -m venv .venv") and ci.endswith(".venv/bin/python -m pytest"), ci
    assert any(line.strip() == ci for line in README.read_text().splitlines()), ci
