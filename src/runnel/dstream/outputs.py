"""Output operations: the only streams that make jobs.

An output stream turns its parent's Dataset at time t into a job the
scheduler runs; outputs run once per batch in the order they were defined.
A stream with no output downstream computes nothing.
"""

from __future__ import annotations

from typing import Callable

from ..dataset import Dataset
from ..listener import ms_to_datetime
from .base import DStream

_RULE = "-" * 43


class ForEachDStream(DStream):
    """Calls ``fn(time_ms, dataset)`` for every batch of its parent."""

    kind = "foreach"

    def __init__(self, ssc, parent: DStream, fn: Callable[[int, Dataset], None], op_name: str,
                 user_fn: Callable | None, description: str | None = None):
        self.kind = op_name
        super().__init__(ssc, [parent])
        self.fn = fn
        self.user_fn = user_fn
        self.op_name = op_name
        self.description = description or f"{op_name} at {parent.name}"
        self.output_id = self.graph.add_output(self)

    def compute(self, t: int) -> Dataset | None:
        return self.parents[0].get_or_compute(t)

    def generate_job(self, t: int) -> Callable[[], None] | None:
        """The job for time t, or None when the parent produces nothing at t."""
        if not self.is_time_valid(t):
            return None
        ds = self.parents[0].get_or_compute(t)
        if ds is None:
            return None
        return lambda: self.fn(t, ds)


def pprint_batch(t: int, ds: Dataset, num: int) -> None:
    """PySpark's pprint format: a rule, the time, a rule, records, '...' if more, a blank line."""
    taken = ds.take(num + 1)
    print(_RULE)
    print(f"Time: {ms_to_datetime(t)}")
    print(_RULE)
    for record in taken[:num]:
        print(record)
    if len(taken) > num:
        print("...")
    print("")
