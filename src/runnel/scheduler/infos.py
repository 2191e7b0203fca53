"""What listeners see of a batch: frozen infos built from the scheduler core's records.

A batch makes six listener events or more (submitted, started, completed, and
each output operation's start and end), each carrying a frozen snapshot of the
batch or operation as it is at that moment (:mod:`runnel.listener`). For a
10-record batch, building those snapshots field by field cost more than the
batch's work, so :class:`ListenerInfos` builds each part once per change and
shares it between the snapshots that hold it (they are immutable):

    inputs      records per input and PySpark's input infos     once, at the first event of the batch
    output o    an operation's frozen info                      when its start, end or error changes
    operations  the read-only table of those                    when one of them changed

The caller (``JobScheduler``) holds its lock while asking, and forgets a batch
after its last event. The core's records stay the one home of what happened.
"""

from __future__ import annotations

import traceback

from ..listener import BatchInfo, OutputOperationInfo, read_only
from .core import KEEP_BATCHES, BatchRecord

_EMPTY = read_only({})


class _Parts:
    __slots__ = ("records", "inputs", "ops", "table")

    def __init__(self, rec: BatchRecord) -> None:
        self.records = read_only(rec.stream_records)
        self.inputs = read_only(rec.input_infos)
        self.ops: dict[int, tuple] = {}       # output id -> (start, end, error, frozen info)
        self.table = None                     # read-only {output id: frozen info}, None: rebuild


class ListenerInfos:
    """Frozen :class:`BatchInfo` / :class:`OutputOperationInfo` of the core's batch records.

    Parameters
    ----------
    graph : DStreamGraph
        Its ``outputs`` by output id name the operations (``op_name``, ``description``).
    """

    def __init__(self, graph) -> None:
        self.graph = graph
        self._parts: dict[int, _Parts] = {}
        self._protos: dict[int, OutputOperationInfo] = {}   # output id -> its info's id, name, description

    def batch(self, rec: BatchRecord) -> BatchInfo:
        """The batch as ``rec`` records it now."""
        parts = self._of(rec)
        table = parts.table
        if table is None:
            table = parts.table = read_only({o: self._op(parts, rec, o) for o in rec.outputs})
        tables = read_only({k: read_only(v) for k, v in rec.state_tables.items()}) if rec.state_tables else _EMPTY
        return BatchInfo.frozen(rec.time, rec.submitted, rec.num_records, rec.started, rec.ended, table,
                                parts.records, tables, parts.inputs)

    def output(self, rec: BatchRecord, o: int) -> OutputOperationInfo:
        """Output operation ``o`` of the batch as ``rec`` records it now."""
        return self._op(self._of(rec), rec, o)

    def forget(self, t: int) -> None:
        """Batch t has had its last event."""
        self._parts.pop(t, None)

    def _of(self, rec: BatchRecord) -> _Parts:
        parts = self._parts.get(rec.time)
        if parts is None:
            parts = self._parts[rec.time] = _Parts(rec)
            if len(self._parts) > KEEP_BATCHES:    # batches a stop dropped never complete
                del self._parts[next(iter(self._parts))]
        return parts

    def _op(self, parts: _Parts, rec: BatchRecord, o: int) -> OutputOperationInfo:
        op = rec.outputs[o]
        held = parts.ops.get(o)
        if held is not None and held[0] == op.start and held[1] == op.end and held[2] is op.error:
            return held[3]
        proto = self._protos.get(o)
        if proto is None:
            out = self.graph.outputs[o]
            proto = self._protos[o] = OutputOperationInfo.frozen(0, o, out.op_name, out.description)
        reason = None if op.error is None else "".join(traceback.format_exception(op.error))
        info = OutputOperationInfo.frozen(rec.time, proto.id, proto.name, proto.description, op.start, op.end,
                                          reason)
        parts.ops[o] = (op.start, op.end, op.error, info)
        parts.table = None
        return info
