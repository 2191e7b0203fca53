"""runnel.frame: a pandas-like streaming DataFrame API compiled onto the DStream graph.

Modules: ``schema`` (schemas, per-batch checks), ``expr`` and ``accessors``
(lazy column expressions; ``.str``, ``.dt``), ``query`` (query strings via
``ast``), ``columns`` (column and row partition ops), ``frame``
(:class:`StreamingDataFrame`), ``source`` (``dstream.to_frame``,
``ssc.frame``), ``aggregate``, ``groupby`` and ``window`` (per-batch, running
and windowed group-by aggregations), ``cumulative`` (cumsum, shift, rolling
... per key across batches), ``ewm`` (exponentially weighted per key), ``join`` (stream-static, stream-stream,
as-of latest), ``watermark``, ``event_time`` and ``dedup`` (event time:
watermarks, tumbling/hopping/session/count windows, late rows,
``drop_duplicates``), ``interval_join`` (stream-stream joins on event time,
buffers bounded by watermarks), ``sql`` (DuckDB per batch), ``testing``
(frame helpers of ``runnel.testing``).
"""

from .event_time import hopping, session, tumbling
from .expr import Expr, col, lit
from .frame import StreamingDataFrame
from .schema import Schema, SchemaError
from .source import FrameSources

__all__ = ["StreamingDataFrame", "Schema", "SchemaError", "Expr", "col", "lit", "FrameSources", "tumbling", "hopping",
           "session"]
