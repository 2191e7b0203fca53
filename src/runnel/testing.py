"""Test kit for runnel pipelines: a manual-clock batch runner, exact comparison, strategies.

The default way to test a streaming operation is a *batch table*: input
batches, an operation, the expected output per batch. :func:`run_stream`
feeds the inputs through ``queue_stream`` on a :class:`~runnel.clock.ManualClock`
(no sleeps: it advances the clock one batch interval at a time and waits,
bounded, for each batch), collects the output stream's dataset at every
batch and returns those lists. :func:`assert_batches_equal` compares them
with what PySpark would give: element types exactly (``1 != 1.0``, tuples
stay tuples), keyed results unordered by default.

The hypothesis strategies (:func:`keyed_records`, :func:`batches_of`) need
``hypothesis`` installed; the rest of this module does not.

Examples
--------
>>> from runnel.testing import run_stream, assert_batches_equal
>>> out = run_stream(lambda s: s.map(lambda w: (w, 1)).reduce_by_key(lambda a, b: a + b),
...                  [["a", "b", "a"], [], ["b"]])
>>> assert_batches_equal(out, [[("a", 2), ("b", 1)], [], [("b", 1)]])
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Sequence

from .clock import ManualClock
from .context import Context
from .dataset import Dataset
from .dstream.base import DStream, fn_arity
from .streaming import StreamingContext

__all__ = ["run_stream", "run_streams", "assert_batches_equal", "keyed_records", "batches_of"]


def run_stream(build: Callable[..., DStream], inputs: Sequence[Any], master: str | Context = "local",
               batches: int | None = None, num_partitions: int | None = None, *,
               batch_duration: float = 1, timeout: float = 60.0) -> list[list]:
    """Run a pipeline on one queue-fed input stream, batch by batch on a manual clock.

    Parameters
    ----------
    build : callable
        ``build(stream)`` or ``build(ssc, stream)``; returns the output DStream.
    inputs : sequence
        One item per batch: a list of records (parallelized into
        ``num_partitions`` partitions), or anything ``queue_stream`` takes
        (a Dataset, NumPy array, pandas DataFrame, Arrow table).
    master : str or Context
        ``"local"``, ``"local[2]"`` ...: a Context is created and stopped
        afterwards. A :class:`~runnel.context.Context` is used as it is and
        left running (cheaper when many tests share a process pool).
    batches : int, optional
        Number of batches to run; defaults to ``len(inputs)``. Later batches
        see an exhausted queue (an empty batch).
    num_partitions : int, optional
        Partitions of each input batch; the context's default parallelism
        by default (as ``queueStream`` of plain lists in PySpark).
    batch_duration : float
        Batch interval in seconds.
    timeout : float
        Seconds to wait for each batch before raising ``TimeoutError``.

    Returns
    -------
    list of list
        The output stream's records for every batch at which it produced a
        dataset (every batch, unless its slide is longer than the batch
        interval), each list in partition order.

    Raises
    ------
    Exception
        The first error raised in the pipeline (the output fails, the run
        continues, and the error is re-raised at the end).

    Examples
    --------
    >>> run_stream(lambda s: s.filter(lambda x: x % 2), [[1, 2, 3], [4], [5]])
    [[1, 3], [], [5]]
    >>> run_stream(lambda ssc, s: s.count(), [[1, 2], []], batches=3)
    [[2], [0], [0]]
    """
    return run_streams(build, [inputs], master, batches, num_partitions,
                       batch_duration=batch_duration, timeout=timeout)


def run_streams(build: Callable[..., DStream], inputs: Sequence[Sequence[Any]], master: str | Context = "local",
                batches: int | None = None, num_partitions: int | None = None, *,
                batch_duration: float = 1, timeout: float = 60.0) -> list[list]:
    """Like :func:`run_stream`, with several input streams.

    ``inputs`` holds one sequence of batches per input stream; ``build`` gets
    the streams in that order (``build(a, b)`` or ``build(ssc, a, b)``).

    Examples
    --------
    >>> run_streams(lambda a, b: a.join(b), [[[("k", 1)], [("x", 0)]], [[("k", "v")]]])
    [[('k', (1, 'v'))], []]
    """
    inputs = [list(i) for i in inputs]
    if not inputs:
        raise ValueError("run_streams needs at least one input stream")
    n = max(len(i) for i in inputs) if batches is None else int(batches)
    own = not isinstance(master, Context)
    ctx = Context(master) if own else master
    try:
        ssc = StreamingContext(ctx, batch_duration, clock=ManualClock())
        try:
            streams = [ssc.queue_stream([_as_item(ctx, b, num_partitions) for b in i]) for i in inputs]
            with_ssc = fn_arity(build) == len(streams) + 1
            out = build(ssc, *streams) if with_ssc else build(*streams)
            if not isinstance(out, DStream):
                raise TypeError(f"build must return a DStream, got {type(out).__name__}")
            results: list[list] = []
            out.foreach_rdd(lambda ds: results.append(ds.collect()))
            ssc.start()
            if n:
                ssc.run_batches(n, timeout=timeout)
            ssc.await_termination_or_timeout(0)  # re-raises the first error of any batch
        finally:
            ssc.stop(stop_spark_context=False)
    finally:
        if own:
            ctx.stop()
    return results


def _as_item(ctx: Context, batch: Any, num_partitions: int | None) -> Any:
    if isinstance(batch, (list, tuple, range)):
        return ctx.parallelize(list(batch), num_partitions)
    return batch


# --- comparison ---------------------------------------------------------------

class _NaN:
    """Stands in for a float NaN, so that NaN equals NaN in comparisons."""

    def __eq__(self, other):
        return isinstance(other, _NaN)

    def __hash__(self):
        return 0

    def __repr__(self):
        return "nan"


def _canonical(x: Any) -> Any:
    """A hashable form of x that is equal only for values of exactly the same types."""
    t = type(x)
    if t is float:
        return (float, _NaN() if math.isnan(x) else x)
    if t is tuple or t is list:
        return (t, tuple(_canonical(v) for v in x))
    if t is dict:
        return (dict, frozenset((_canonical(k), _canonical(v)) for k, v in x.items()))
    if t is set or t is frozenset:
        return (t, frozenset(_canonical(v) for v in x))
    if isinstance(x, Dataset):
        raise TypeError("compare collected records, not Datasets (call .collect())")
    try:
        hash(x)
    except TypeError:
        if hasattr(x, "__iter__"):  # groupByKey-style iterables
            return (t, tuple(_canonical(v) for v in x))
        return (t, repr(x))
    return (t, x)


def assert_batches_equal(actual: Sequence[Sequence], expected: Sequence[Sequence], ordered: bool = False) -> None:
    """Assert per-batch outputs are equal, element types exactly.

    ``1`` and ``1.0`` differ, ``(1, 2)`` and ``[1, 2]`` differ, ``numpy.int64(1)``
    and ``1`` differ (PySpark returns native Python values); NaN equals NaN.
    With ``ordered=False`` (the default, as PySpark's keyed results are compared
    unsorted) each batch is compared as a multiset; lists nested inside records
    (grouped values) are always compared in order.

    Examples
    --------
    >>> assert_batches_equal([[("a", 1), ("b", 2)]], [[("b", 2), ("a", 1)]])
    >>> assert_batches_equal([[1, 2]], [[2, 1]], ordered=True)
    Traceback (most recent call last):
    ...
    AssertionError: batch 0 differs (ordered): got [1, 2], expected [2, 1]
    >>> assert_batches_equal([[1]], [[1.0]])
    Traceback (most recent call last):
    ...
    AssertionError: batch 0 differs: missing [1.0], unexpected [1]; got [1], expected [1.0]
    """
    actual, expected = list(actual), list(expected)
    if len(actual) != len(expected):
        raise AssertionError(f"got {len(actual)} batches, expected {len(expected)}:\n"
                             f"  got      {actual!r}\n  expected {expected!r}")
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = list(a), list(e)
        ca, ce = [_canonical(x) for x in a], [_canonical(x) for x in e]
        if ordered:
            if ca != ce:
                raise AssertionError(f"batch {i} differs (ordered): got {a!r}, expected {e!r}")
        elif Counter(ca) != Counter(ce):
            missing = [x for x, c in zip(e, ce) if c in (Counter(ce) - Counter(ca))]
            extra = [x for x, c in zip(a, ca) if c in (Counter(ca) - Counter(ce))]
            raise AssertionError(f"batch {i} differs: missing {missing!r}, unexpected {extra!r}; "
                                 f"got {a!r}, expected {e!r}")


# --- hypothesis strategies ---------------------------------------------------------

def keyed_records(keys: Any = None, values: Any = None, min_size: int = 0, max_size: int = 20):
    """A hypothesis strategy for one batch of ``(key, value)`` pairs.

    Parameters
    ----------
    keys, values : hypothesis strategies, optional
        Defaults: a handful of short strings (so keys repeat) and small ints.
    min_size, max_size : int
        Number of records.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, deadline=None)
    ... @given(keyed_records())
    ... def check(records):
    ...     assert all(type(r) is tuple and len(r) == 2 for r in records)
    >>> check()
    """
    from hypothesis import strategies as st
    keys = st.sampled_from(["a", "b", "c", "d", "é", ""]) if keys is None else keys
    values = st.integers(-1000, 1000) if values is None else values
    return st.lists(st.tuples(keys, values), min_size=min_size, max_size=max_size)


def batches_of(records: Any = None, min_batches: int = 1, max_batches: int = 4):
    """A hypothesis strategy for a list of batches, each drawn from ``records``.

    ``records`` is a strategy for one batch (a list of records), by default
    :func:`keyed_records`. The result is what :func:`run_stream` takes as
    ``inputs``.

    Examples
    --------
    >>> from hypothesis import given, settings, strategies as st
    >>> @settings(max_examples=5, deadline=None)
    ... @given(batches_of(st.lists(st.integers(), max_size=5)))
    ... def check(batches):
    ...     out = run_stream(lambda s: s.map(lambda x: x + 1), batches)
    ...     assert_batches_equal(out, [[x + 1 for x in b] for b in batches], ordered=True)
    >>> check()
    """
    from hypothesis import strategies as st
    records = keyed_records() if records is None else records
    return st.lists(records, min_size=min_batches, max_size=max_batches)


# --- DataFrame streams (runnel.frame) -----------------------------------------------------------
from .frame.testing import assert_frame_batches_equal, run_frame  # noqa: E402

__all__ += ["run_frame", "assert_frame_batches_equal"]
