"""Dead letters: the records a per-key state update could not take (``on_bad_record``).

A record the update cannot take fails its batch by default ("fail", Spark's
behaviour for a task that raises), and the state goes on from the last good
batch (``StatefulDStream.settle``). With "dead_letter" such records are left
out of the state and come out of ``dead_letters()`` as ``(key, value,
error)``: for a built-in updater each record that is not a number or does
not fold (``state_tables.FlagBad``, before the shuffle), for a Python function
every new value of a key whose call raised (the key keeps its state).

Why this shape: an argument, because the choice belongs to an operator (a
counter may drop what a ledger must not), with a conf key
(:data:`BAD_RECORD_CONF`) for a program-wide default; a stream, not a file,
because a stream goes to any sink (``save_as_text_files`` writes the file)
and is replayed with its batch after a recovery. Dead letters are never
silent: :class:`DeadLetters` computes each batch's once its outputs ran,
counts them in ``BatchInfo.state_tables`` and logs a warning naming the first.
"""

from __future__ import annotations

import logging
from typing import Callable

from ..dataset import Dataset
from ..listener import ms_to_datetime
from ..plan import Blocks
from .base import DStream

__all__ = ["BAD_RECORD_CONF", "ON_BAD_RECORD", "bad_record_mode", "DeadLetters", "DeadLettersDStream"]

log = logging.getLogger("runnel.state")

BAD_RECORD_CONF = "runnel.streaming.state.onBadRecord"
ON_BAD_RECORD = ("fail", "dead_letter")


def bad_record_mode(stream: DStream, on_bad_record: str | None) -> str:
    """``on_bad_record``, or the conf's default ("fail"), checked."""
    mode = on_bad_record if on_bad_record is not None else stream.ssc.context.conf.get(BAD_RECORD_CONF, "fail")
    if mode not in ON_BAD_RECORD:
        where = "on_bad_record" if on_bad_record is not None else f"conf {BAD_RECORD_CONF}"
        raise ValueError(f"{where} must be 'fail' or 'dead_letter', got {mode!r}")
    return mode


class DeadLetters:
    """The dead letters of one stream, per batch time: memoised, cached, counted, logged.

    ``records(t)`` builds the (key, value, error) Dataset of batch t;
    ``tables`` keeps what it reads that the stream does not (the Python
    path's table with its bad rows), forgotten with the dead letters.
    """

    def __init__(self, stream: DStream, records: Callable[[int], Dataset]):
        self.stream = stream
        self.records = records
        self.tables: dict[int, Dataset] = {}
        self._at: dict[int, Dataset] = {}

    def at(self, t: int) -> Dataset:
        ds = self._at.get(t)
        if ds is None:
            ds = self.records(t)
            ds = Dataset(ds.ctx, ds.plan, f"{self.stream.name} dead letters at {ms_to_datetime(t)}").cache()
            self._at[t] = ds
        return ds

    def report(self, t: int) -> None:
        """Compute batch t's dead letters (if no output did) and log a warning when there are some."""
        dead = self.at(t)
        try:
            dead.materialize()
        except Exception:  # noqa: BLE001  (its batch failed: already reported by settle or the outputs)
            log.exception("runnel: %s: the dead letters of the batch at %s could not be computed",
                          self.stream.name, ms_to_datetime(t))
            return
        refs = [r for r in dead.plan.refs if r.nrows]
        if refs:
            key, value, error = self.stream.ssc.context.executor.store.get(refs[0]).to_records()[0]
            log.warning("runnel: %s: %d bad record(s) of the batch at %s went to its dead letters "
                        "(the first: key %r, value %r: %s)", self.stream.name, sum(r.nrows for r in refs),
                        ms_to_datetime(t), key, value, error)

    def count(self, t: int) -> int:
        dead = self._at.get(t)
        return sum(r.nrows for r in dead.plan.refs) if dead is not None and isinstance(dead.plan, Blocks) else 0

    def forget_through(self, horizon: int) -> None:
        for kept in (self._at, self.tables):
            for old in [k for k in kept if k <= horizon]:
                del kept[old]


class DeadLettersDStream(DStream):
    """``state.dead_letters()``: the (key, value, error) records each batch's update left out."""

    kind = "dead_letters"

    def __init__(self, states: DStream):
        super().__init__(states.ssc, [states])

    def compute(self, t):
        return self.parents[0].dead_letters_at(t)
