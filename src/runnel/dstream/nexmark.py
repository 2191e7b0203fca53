"""The Nexmark source: one kind of Nexmark event (person, auction, bid), ``events_per_batch`` events a batch.

Batch k after start (k = 1, 2, ...) covers the events emitted at positions
``[(k - 1) n, k n)`` of the Nexmark stream (``n = events_per_batch``; a
kind's stream holds its share of them: 1, 3 and 46 in 50), split into
``num_partitions`` contiguous ranges of positions, each generated on its own
(:func:`runnel.nexmark.generator.generate`). Like the rate stream, the data
of a batch depends only on the configuration and the batch number, never on
the clock: a recovered program regenerates exactly the batches it had, and
the three kinds of one configuration are slices of one event stream (a
bid's auction and bidder ids point at the auctions and persons of the
other two streams).
"""

from __future__ import annotations

from ..dataset import split_slices
from ..nexmark.generator import KINDS, NexmarkConfig, generate
from .inputs import InputDStream

__all__ = ["NexmarkInputDStream"]


class NexmarkInputDStream(InputDStream):
    """The ``kind`` events of the Nexmark stream ``config``, ``events_per_batch`` events a batch.

    Examples
    --------
    >>> from runnel import StreamingContext, ManualClock
    >>> from runnel.nexmark.generator import NexmarkConfig
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> out = []
    >>> NexmarkInputDStream(ssc, "auction", 100, NexmarkConfig()).count().foreach_rdd(
    ...     lambda rdd: out.append(rdd.collect()))
    >>> ssc.start(); ssc.run_batches(2); ssc.stop()
    >>> out
    [[6], [6]]
    """

    kind = "nexmark"

    def __init__(self, ssc, kind: str, events_per_batch: int, config: NexmarkConfig,
                 num_partitions: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"Nexmark event kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
        for what, v in (("events_per_batch", events_per_batch), ("num_partitions", num_partitions)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"Nexmark {what} must be a positive int, got {v!r}")
        super().__init__(ssc)
        self.event_kind, self.events_per_batch, self.config = kind, int(events_per_batch), config
        self.num_partitions = num_partitions

    def batch_number(self, t: int) -> int:
        """1 for the first batch after start, 2 for the next, ..."""
        return (t - self.graph.zero_ms) // self.slide_ms

    def events(self, t: int) -> tuple[int, int]:
        """The positions ``[start, stop)`` of the Nexmark stream the batch at t covers."""
        n = self.events_per_batch
        k = self.batch_number(t)
        return (k - 1) * n, k * n

    def compute(self, t: int):
        start, stop = self.events(t)
        k = self.num_partitions or self.ssc.context.default_parallelism
        parts = [generate(self.event_kind, start + a, start + b, self.config) for a, b in split_slices(stop - start, k)]
        return self._counted(t, self.ssc.context.dataset_of(parts, self.name))
