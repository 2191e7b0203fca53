"""Frame helpers of the test kit (re-exported by :mod:`runnel.testing`).

:func:`run_frame` feeds pandas DataFrames, one per batch, through
``ssc.frame.queue`` on a :class:`~runnel.clock.ManualClock` and returns the
output frame of every batch; :func:`assert_frame_batches_equal` compares
them with expected frames (rows in any order by default).

Examples
--------
>>> import pandas as pd
>>> from runnel.testing import run_frame, assert_frame_batches_equal
>>> inputs = [pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]}), pd.DataFrame({"k": ["b"], "v": [4]})]
>>> out = run_frame(lambda sdf: sdf.groupby("k").agg(total=("v", "sum")), inputs)
>>> assert_frame_batches_equal(out, [pd.DataFrame({"k": ["a", "b"], "total": [4, 2]}),
...                                  pd.DataFrame({"k": ["b"], "total": [4]})])
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..clock import ManualClock
from ..context import Context
from ..dstream.base import fn_arity

__all__ = ["run_frame", "assert_frame_batches_equal"]


def run_frame(build: Callable, inputs: Sequence[Any], master: str | Context = "local", *,
              schema: Any = None, batches: int | None = None, num_partitions: int | None = None,
              batch_duration: float = 1, timeout: float = 60.0, checkpoint: str | None = None) -> list:
    """Run ``build(sdf)`` (or ``build(ssc, sdf)``) on frames fed one per batch; the output frames per batch.

    ``inputs`` are pandas DataFrames (or anything ``ssc.frame.queue`` takes), each
    split into ``num_partitions`` partitions (the context's default parallelism by
    default). ``build`` returns a :class:`~runnel.frame.StreamingDataFrame`; the
    result is its pandas frame at every batch. The first error of any batch is
    re-raised after the run.
    """
    from ..streaming import StreamingContext
    import pandas as pd
    own = not isinstance(master, Context)
    ctx = Context(master) if own else master
    n = len(inputs) if batches is None else int(batches)
    try:
        ssc = StreamingContext(ctx, batch_duration, clock=ManualClock())
        if checkpoint is not None:
            ssc.checkpoint(checkpoint)
        try:
            parts = num_partitions or ctx.default_parallelism
            items = [ctx.parallelize(f, parts) if isinstance(f, pd.DataFrame) and len(f) else f for f in inputs]
            if schema is None:
                first = next((f for f in inputs if isinstance(f, pd.DataFrame) and len(f)), None)
                if first is not None:
                    from ..batch import Batch
                    from .schema import Schema, to_frame_batch
                    schema = Schema.of_batch(to_frame_batch(Batch.from_pandas(first), None))
            sdf = ssc.frame.queue(items, schema=schema)
            out = build(ssc, sdf) if fn_arity(build) == 2 else build(sdf)
            results: list = []
            out.foreach_batch(lambda df, t: results.append(df))
            ssc.start()
            if n:
                ssc.run_batches(n, timeout=timeout)
            ssc.await_termination_or_timeout(0)
        finally:
            ssc.stop(stop_spark_context=False)
    finally:
        if own:
            ctx.stop()
    return results


def _canonical(df, check_order: bool):
    df = df.reset_index(drop=True)
    if not check_order and len(df.columns) and len(df):
        try:
            df = df.sort_values(list(df.columns), kind="stable", na_position="first").reset_index(drop=True)
        except TypeError:   # unorderable values (mixed types): order by their repr
            df = df.iloc[sorted(range(len(df)), key=lambda i: repr(tuple(df.iloc[i])))].reset_index(drop=True)
    return df


def assert_frame_batches_equal(actual: Sequence[Any], expected: Sequence[Any], check_order: bool = False,
                               check_dtype: bool = True, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """Assert two lists of per-batch pandas frames are equal, batch by batch.

    Rows may come in any order unless ``check_order``; columns must match in
    order; floats within ``rtol`` (and ``atol``); an empty frame equals an empty frame with
    the same columns whatever their dtypes.
    """
    import pandas as pd
    import pandas.testing as pdt
    if len(actual) != len(expected):
        raise AssertionError(f"{len(actual)} batches, expected {len(expected)}")
    for i, (a, e) in enumerate(zip(actual, expected)):
        e = pd.DataFrame(e) if not isinstance(e, pd.DataFrame) else e
        if list(a.columns) != list(e.columns):
            raise AssertionError(f"batch {i}: columns {list(a.columns)}, expected {list(e.columns)}")
        if len(a) == 0 and len(e) == 0:
            continue
        try:
            pdt.assert_frame_equal(_canonical(a, check_order), _canonical(e, check_order),
                                   check_dtype=check_dtype, rtol=rtol, atol=atol, check_index_type=False)
        except AssertionError as err:
            raise AssertionError(f"batch {i} differs: {err}\nactual:\n{a}\nexpected:\n{e}") from None
