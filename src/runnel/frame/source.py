"""Where frames come from: a DStream turned into frame batches, schema given or inferred, checked per batch.

:class:`FrameSourceDStream` conforms every batch of its parent to the frame's
schema (``schema.Conform``, one narrow op per partition). Without a schema,
the first batch with rows fixes it: that batch is computed once in the
driver (and cached, so it is not computed twice), its partitions' dtypes are
merged (an int column in one partition and a float column in another is
float64) and every later batch must fit.

:class:`FrameSources` is ``ssc.frame``: frames straight from a source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..dataset import Dataset
from ..dstream.base import DStream
from ..dstream.nexmark import NexmarkInputDStream
from ..nexmark.generator import KINDS as NEXMARK_KINDS
from ..nexmark.generator import SCHEMAS as NEXMARK_SCHEMAS
from ..nexmark.generator import NexmarkConfig
from .schema import Conform, Schema, SchemaError, to_frame_batch

if TYPE_CHECKING:
    from ..streaming import StreamingContext
    from .frame import StreamingDataFrame

__all__ = ["FrameSourceDStream", "FrameSources", "NexmarkFrames", "frame_of"]


def _merge_dtypes(a: str, b: str) -> str:
    if a == b:
        return a
    nums = {a[:3], b[:3]}
    if nums <= {"int", "flo", "uin", "boo"} and ("flo" in nums):
        return "float64"
    if nums <= {"int", "uin"}:
        return "int64"
    return "object"


def merge_schemas(schemas: Sequence[Schema], where: str) -> Schema:
    """One schema for partitions of one batch (dtypes widened where partitions differ)."""
    first = schemas[0]
    fields = dict(first.fields)
    for s in schemas[1:]:
        if set(s.names) != set(first.names):
            raise SchemaError(f"partitions of the first batch {where} have different columns: "
                              f"{list(first.names)} and {list(s.names)}")
        for n, d in s.fields:
            fields[n] = _merge_dtypes(fields[n], d)
    return Schema(tuple(fields.items()))


class FrameSourceDStream(DStream):
    """The parent's batches as frame batches fitting ``schema`` (fixed by the first batch when None)."""

    kind = "to_frame"

    def __init__(self, parent: DStream, columns: Sequence[str] | None, schema: Any = None):
        super().__init__(parent.ssc, [parent])
        self.schema = Schema.of(schema) if schema is not None else None
        if columns is None and self.schema is not None:
            columns = self.schema.names
        self.columns = tuple(str(c) for c in columns) if columns is not None else None
        if self.schema is not None and self.columns is not None and set(self.columns) != set(self.schema.names):
            raise ValueError(f"columns {list(self.columns)} and schema {self.schema} name different columns")

    def _infer(self, ds: Dataset, t: int) -> None:
        ds.cache()   # computed here once; the frame's batch reads the same blocks
        where = f"of stream {self.name} at batch time {t}"
        found = []
        for b in ds.collect_batches():
            if len(b):
                try:
                    found.append(Schema.of_batch(to_frame_batch(b, self.columns)))
                except SchemaError as e:
                    raise SchemaError(f"{e} ({where})") from None
        if found:
            self.schema = merge_schemas(found, where)

    def compute(self, t: int) -> Dataset | None:
        ds = self.parents[0].get_or_compute(t)
        if ds is None:
            return None
        if self.schema is None:
            self._infer(ds, t)
            if self.schema is None:   # no rows yet: nothing to infer from
                return self.ssc.context.empty_dataset(f"{self.name} (no rows yet)")
        return ds.narrow(Conform(self.schema, self.columns, self.name, t))


def frame_of(stream: DStream, columns: Sequence[str] | None = None, schema: Any = None) -> "StreamingDataFrame":
    """A :class:`StreamingDataFrame` of ``stream`` (``DStream.to_frame``)."""
    from .frame import StreamingDataFrame
    return StreamingDataFrame._of_source(FrameSourceDStream(stream, columns, schema))


class FrameSources:
    """``ssc.frame``: streaming DataFrames straight from a source.

    Examples
    --------
    >>> import pandas as pd
    >>> from runnel import StreamingContext, ManualClock
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> sdf = ssc.frame.queue([pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]})])
    >>> sdf.columns, sdf.dtypes
    (['k', 'v'], {'k': 'string', 'v': 'float64'})
    >>> ssc.stop()
    """

    def __init__(self, ssc: "StreamingContext"):
        self._ssc = ssc

    def queue(self, frames: Sequence[Any], schema: Any = None, columns: Sequence[str] | None = None,
              one_at_a_time: bool = True) -> "StreamingDataFrame":
        """One batch per item: pandas DataFrames, Arrow tables, dicts of arrays, lists of dicts or tuples.

        Without ``schema``, the first item fixes it (known at once, before the stream starts).
        A ``collections.deque`` stays live: frames appended while the stream runs are its next batches.
        """
        import collections

        from ..batch import Batch
        if isinstance(frames, collections.deque):
            return frame_of(self._ssc.queue_stream(frames, one_at_a_time), columns, schema)
        frames = list(frames)
        if schema is None:
            for f in frames:
                b = Batch.coerce(f) if not isinstance(f, Dataset) else None
                if b is not None and len(b):
                    schema = Schema.of_batch(to_frame_batch(b, tuple(columns) if columns else None))
                    break
        stream = self._ssc.queue_stream([f if isinstance(f, Dataset) or not isinstance(f, list)
                                         else self._ssc.context.parallelize(f) for f in frames], one_at_a_time)
        return frame_of(stream, columns, schema)

    def socket(self, hostname: str, port: int, column: str = "value") -> "StreamingDataFrame":
        """Lines of text from a TCP server: one string column."""
        return frame_of(self._ssc.socket_text_stream(hostname, port), [column], {column: "string"})

    def files(self, directory: str, column: str = "value") -> "StreamingDataFrame":
        """Lines of the text files that appear in ``directory``: one string column."""
        return frame_of(self._ssc.text_file_stream(directory), [column], {column: "string"})

    def rate(self, kind: str = "pairs", records_per_batch: int = 1000, columns: Sequence[str] | None = None,
             **options: Any) -> "StreamingDataFrame":
        """The built-in generated source (``ssc.rate_stream``): ``"pairs"`` gives columns ``key`` (int64)
        and ``value`` (float64), ``"ints"`` one int64 column, ``"words"`` one string column of lines."""
        schemas = {"pairs": {"key": "int64", "value": "float64"}, "ints": {"value": "int64"},
                   "words": {"value": "string"}}
        if kind not in schemas:
            raise ValueError(f"rate kind must be one of {sorted(schemas)}, got {kind!r}")
        spec = schemas[kind]
        if columns is not None:
            if len(columns) != len(spec):
                raise ValueError(f"rate {kind!r} has {len(spec)} column(s), got names {list(columns)}")
            spec = dict(zip(columns, spec.values()))
        return frame_of(self._ssc.rate_stream(kind, records_per_batch, **options), list(spec), spec)

    def nexmark(self, events_per_batch: int = 100_000, seed: int = 0, rate: int = 10_000,
                out_of_order: int = 1, num_partitions: int | None = None, **config: Any) -> "NexmarkFrames":
        """The Nexmark benchmark's event stream: ``.persons``, ``.auctions`` and ``.bids`` frames.

        Every batch covers the next ``events_per_batch`` events of one seeded
        stream (``runnel.nexmark.generator``: 1 person, 3 auctions, 46 bids in
        50 events; ``rate`` events per second of event time, in a
        ``date_time`` column; ``out_of_order`` scrambles groups of that many).
        A kind's stream is generated only if its frame is used.

        Examples
        --------
        >>> from runnel import StreamingContext, ManualClock
        >>> ssc = StreamingContext("local", 1, clock=ManualClock())
        >>> nx = ssc.frame.nexmark(events_per_batch=1000, seed=3)
        >>> nx.bids.columns
        ['auction', 'bidder', 'price', 'channel', 'url', 'date_time', 'extra']
        >>> ssc.stop()
        """
        cfg = NexmarkConfig(seed=seed, rate=rate, out_of_order=out_of_order, **config)
        return NexmarkFrames(self._ssc, events_per_batch, cfg, num_partitions)

    def stream(self, dstream: DStream, columns: Sequence[str] | None = None, schema: Any = None):
        """Any DStream as a frame (the same as ``dstream.to_frame``)."""
        return frame_of(dstream, columns, schema)


class NexmarkFrames:
    """``ssc.frame.nexmark(...)``: the persons, auctions and bids of one Nexmark event stream as frames.

    Each frame is made (and its input stream added to the graph) on first use.
    """

    def __init__(self, ssc: "StreamingContext", events_per_batch: int, config: NexmarkConfig,
                 num_partitions: int | None = None):
        self.config, self.events_per_batch = config, events_per_batch
        self._ssc, self._n = ssc, num_partitions
        self._frames: dict = {}

    def frame(self, kind: str) -> "StreamingDataFrame":
        """The frame of one kind: "person", "auction" or "bid"."""
        if kind not in self._frames:
            if kind not in NEXMARK_KINDS:
                raise ValueError(f"Nexmark event kind must be one of {', '.join(map(repr, NEXMARK_KINDS))}, "
                                 f"got {kind!r}")
            stream = NexmarkInputDStream(self._ssc, kind, self.events_per_batch, self.config, self._n)
            self._frames[kind] = frame_of(stream, None, NEXMARK_SCHEMAS[kind])
        return self._frames[kind]

    @property
    def persons(self) -> "StreamingDataFrame":
        return self.frame("person")

    @property
    def auctions(self) -> "StreamingDataFrame":
        return self.frame("auction")

    @property
    def bids(self) -> "StreamingDataFrame":
        return self.frame("bid")
