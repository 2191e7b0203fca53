"""``pyspark.sql``, the minimum for the Streaming Guide's DataFrame-in-foreachRDD pattern.

A small :class:`DataFrame` over a `DuckDB <https://duckdb.org>`_ relation:
``SparkSession.builder.config(conf=...).getOrCreate()``, :class:`Row`,
``spark.createDataFrame(rdd or list of rows)``, ``df.createOrReplaceTempView``,
``spark.sql(query)``, ``df.show()`` (Spark's table), ``df.collect()`` (Rows),
``df.toPandas()``, ``df.count()``, ``df.columns``. SQL is DuckDB's dialect,
which covers the queries such programs run (select, group by, count, sum,
joins); DuckDB is the optional extra ``runnel[sql]``.

The full DataFrame API is separate work; this module only bridges a
foreachRDD batch to SQL.

Examples
--------
>>> from runnel.pyspark import SparkContext
>>> sc = SparkContext("local", "sql")
>>> spark = SparkSession.builder.config(conf=sc.getConf()).getOrCreate()
>>> words = spark.createDataFrame(sc.parallelize(["a", "b", "a"]).map(lambda w: Row(word=w)))
>>> words.createOrReplaceTempView("words")
>>> spark.sql("select word, count(*) as total from words group by word order by word").show()
+----+-----+
|word|total|
+----+-----+
|   a|    2|
|   b|    1|
+----+-----+
<BLANKLINE>
>>> sc.stop()
"""

from __future__ import annotations

import threading
from typing import Any, Iterable

from ..dataset import Dataset
from .conf import SparkConf
from .context import SparkContext

__all__ = ["SparkSession", "DataFrame", "Row", "parse_ddl", "import_duckdb"]


def import_duckdb():
    """The ``duckdb`` module, or an ImportError saying which extra installs it.

    The one import of DuckDB for ``runnel.pyspark.sql`` and ``sdf.sql(...)``
    (``runnel.frame.sql``): DuckDB is the optional extra ``runnel[sql]``.
    """
    try:
        import duckdb
    except ImportError as e:
        raise ImportError("runnel.pyspark.sql needs DuckDB: install the extra with pip install 'runnel[sql]' "
                          "(or pip install duckdb)") from e
    return duckdb


class Row(tuple):
    """A record with named fields: ``Row(word="a", total=2)``; ``row.word``, ``row["word"]``, ``row[0]``.

    ``Row("word", "total")`` makes a row class: calling it with values gives rows.
    As in PySpark, ``createDataFrame`` matches a keyword Row's values to the
    columns by field name, a row class's rows by position.

    Examples
    --------
    >>> r = Row(word="a", total=2)
    >>> r, r.word, r["total"], r[0], r.asDict()
    (Row(word='a', total=2), 'a', 2, 'a', {'word': 'a', 'total': 2})
    >>> Pair = Row("k", "v"); Pair(1, "x")
    Row(k=1, v='x')
    """

    __fields__: tuple[str, ...]
    __from_dict__: bool = False   # made with keywords: fields matched by name

    def __new__(cls, *args: Any, **kwargs: Any) -> "Row":
        if args and kwargs:
            raise ValueError("Can not use both args and kwargs to create Row")
        if kwargs:
            return _make_row(tuple(kwargs), tuple(kwargs.values()), from_dict=True)
        row = tuple.__new__(cls, args)      # Row("a", "b"): a row class (names without values)
        row.__fields__ = ()
        return row

    def __call__(self, *values: Any) -> "Row":
        if self.__fields__:
            raise TypeError("a Row with values is not callable; Row('name', ...) makes a row class")
        if len(values) > len(self):
            raise ValueError(f"Can not create Row with fields {tuple(self)}, expected {len(self)} values "
                             f"but got {values}")
        return _make_row(tuple(self), values)

    def asDict(self, recursive: bool = False) -> dict:
        """The fields as a dict (nested Rows too with ``recursive=True``)."""
        if not self.__fields__:
            raise TypeError("Cannot convert a Row class into dict")
        if not recursive:
            return dict(zip(self.__fields__, self))
        return {k: v.asDict(True) if isinstance(v, Row) and v.__fields__ else v for k, v in zip(self.__fields__, self)}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[self.__fields__.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            try:
                return tuple.__getitem__(self, self.__fields__.index(item))
            except ValueError:
                raise KeyError(item) from None
        return tuple.__getitem__(self, item)

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in ("__fields__", "__from_dict__"):
            raise RuntimeError("Row is read-only")
        object.__setattr__(self, key, value)

    def __reduce__(self):
        if self.__fields__:
            return _make_row, (self.__fields__, tuple(self), self.__from_dict__)
        return Row, tuple(self)

    def __repr__(self) -> str:
        if self.__fields__:
            return "Row(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.__fields__, self)) + ")"
        return "<Row(" + ", ".join(repr(f) for f in self) + ")>"


def _make_row(fields: tuple, values: tuple, from_dict: bool = False) -> Row:
    row = tuple.__new__(Row, values)
    row.__fields__ = tuple(fields)
    if from_dict:
        row.__from_dict__ = True
    return row


def _ddl_types() -> dict:
    import pyarrow as pa

    return {"string": pa.string(), "int": pa.int32(), "integer": pa.int32(), "bigint": pa.int64(),
            "long": pa.int64(), "double": pa.float64(), "float": pa.float32(), "boolean": pa.bool_(),
            "timestamp": pa.timestamp("us"), "date": pa.date32()}


_DDL_NAMES = "string, int, bigint, double, float, boolean, timestamp, date"


def parse_ddl(schema: str) -> tuple[list[str], list]:
    """Column names and Arrow types of a simple DDL schema, ``"word string, n int"``.

    ``name type`` or ``name: type`` pairs separated by commas, with the types
    string, int (integer), bigint (long), double, float, boolean, timestamp
    and date; anything else is a ValueError naming the column and type.
    """
    types = _ddl_types()
    names, arrow = [], []
    for part in _split_top_level(schema):
        pieces = part.replace(":", " ", 1).split(None, 1) if part.strip() else []
        if len(pieces) != 2:
            raise ValueError(f"createDataFrame: schema {schema!r} is not a DDL string of the form "
                             f"'name type, ...' (e.g. 'word string, n int')")
        name, kind = pieces[0].strip("`"), pieces[1].strip()
        if kind.lower() not in types:
            raise ValueError(f"createDataFrame: schema {schema!r}: column {name!r} has type {kind!r}; "
                             f"supported: {_DDL_NAMES}")
        names.append(name)
        arrow.append(types[kind.lower()])
    return names, arrow


def _ddl_name(arrow_type) -> str:
    """The DDL name of an Arrow type from :func:`parse_ddl` (``int32`` is ``int``)."""
    return next(k for k, v in _ddl_types().items() if v == arrow_type)


def _split_top_level(text: str) -> list[str]:
    """``text`` split at commas outside parentheses (``decimal(10,2)`` stays one type)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "(<") - (ch in ")>")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _values(record: Any, names: list[str], by_name: list[str] | None) -> list:
    """``record``'s values in column order: dicts and keyword Rows by name, the rest by position."""
    if isinstance(record, dict):
        return [record.get(n) for n in by_name or names]
    if isinstance(record, Row) and record.__from_dict__:
        fields = record.__fields__
        try:
            return [tuple.__getitem__(record, fields.index(n)) for n in by_name or names]
        except ValueError:
            missing = next(n for n in by_name or names if n not in fields)
            raise ValueError(f"createDataFrame: {record!r} has no field {missing!r} "
                             f"(the columns are {', '.join(by_name or names)})") from None
    values = list(record)
    if len(values) != len(names):
        raise ValueError(f"createDataFrame: row {record!r} has {len(values)} fields, the schema {len(names)}")
    return values


def _cell(value: Any, truncate: int) -> str:
    """A value as Spark's ``show`` writes it."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)) and not isinstance(value, Row):
        text = "[" + ", ".join(_cell(v, 0) for v in value) + "]"
    elif isinstance(value, Row):
        text = "{" + ", ".join(_cell(v, 0) for v in value) + "}"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_cell(k, 0)} -> {_cell(v, 0)}" for k, v in value.items()) + "}"
    elif isinstance(value, (bytes, bytearray)):
        text = "[" + " ".join(f"{b:02X}" for b in value) + "]"
    else:
        text = str(value)
    if truncate > 0 and len(text) > truncate:
        text = text[:truncate] if truncate < 4 else text[:truncate - 3] + "..."
    return text


def show_string(columns: list[str], rows: list[tuple], n: int, truncate: int, has_more: bool) -> str:
    """Spark's ``Dataset.showString``: a +---+ bordered table, cells right-aligned when truncating.

    >>> print(show_string(["word", "n"], [("a", 10), (None, 2)], 20, 20, False), end="")
    +----+---+
    |word|  n|
    +----+---+
    |   a| 10|
    |null|  2|
    +----+---+
    """
    header = [_cell(c, truncate) for c in columns]
    body = [[_cell(v, truncate) for v in row] for row in rows]
    widths = [max([3, len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    pad = (lambda s, w: s.rjust(w)) if truncate > 0 else (lambda s, w: s.ljust(w))
    sep = "+" + "+".join("-" * w for w in widths) + "+\n"
    out = [sep, "|" + "|".join(pad(h, w) for h, w in zip(header, widths)) + "|\n", sep]
    out += ["|" + "|".join(pad(c, w) for c, w in zip(r, widths)) + "|\n" for r in body]
    out.append(sep)
    if has_more:
        out.append(f"only showing top {n} {'row' if n == 1 else 'rows'}\n")
    return "".join(out)


class DataFrame:
    """Rows with named columns, over a DuckDB relation (lazy until shown or collected)."""

    def __init__(self, session: "SparkSession", relation: Any):
        self.sparkSession = session
        self._rel = relation

    @property
    def columns(self) -> list[str]:
        """The column names, in order."""
        return list(self._rel.columns)

    def createOrReplaceTempView(self, name: str) -> None:
        """Make this DataFrame queryable as ``name`` in ``spark.sql`` (replacing an earlier one)."""
        self._rel.create_view(name, replace=True)

    def collect(self) -> list[Row]:
        """All rows, as :class:`Row` objects."""
        names = tuple(self.columns)
        return [_make_row(names, r) for r in self._rel.fetchall()]

    def take(self, num: int) -> list[Row]:
        """The first ``num`` rows, as :class:`Row` objects."""
        names = tuple(self.columns)
        return [_make_row(names, r) for r in self._rel.limit(num).fetchall()]

    def count(self) -> int:
        """The number of rows."""
        return int(self._rel.aggregate("count(*)").fetchall()[0][0])

    def toPandas(self):
        """A pandas DataFrame of the rows."""
        return self._rel.df()

    def show(self, n: int = 20, truncate: bool | int = True, vertical: bool = False) -> None:
        """Print the first ``n`` rows as Spark's table (strings cut to 20 characters unless
        ``truncate=False``), followed by a blank line, as PySpark's ``show`` prints."""
        if vertical:
            raise NotImplementedError("show(vertical=True) is not supported")
        width = 20 if truncate is True else int(truncate)
        rows = self._rel.limit(n + 1).fetchall()
        print(show_string(self.columns, rows[:n], n, width, len(rows) > n))

    def __repr__(self) -> str:
        types = [str(t).lower() for t in self._rel.types]
        return "DataFrame[" + ", ".join(f"{c}: {t}" for c, t in zip(self.columns, types)) + "]"


class _Builder:
    """``SparkSession.builder``: settings, then :meth:`getOrCreate`."""

    def __init__(self):
        self._conf = SparkConf(loadDefaults=False)

    def config(self, key: str | None = None, value: Any = None, conf: SparkConf | None = None) -> "_Builder":
        if conf is not None:
            self._conf.setAll(conf.getAll())
        if key is not None:
            self._conf.set(key, value)
        return self

    def master(self, master: str) -> "_Builder":
        return self.config("spark.master", master)

    def appName(self, name: str) -> "_Builder":
        return self.config("spark.app.name", name)

    def enableHiveSupport(self) -> "_Builder":
        return self

    def getOrCreate(self) -> "SparkSession":
        """The active session, or a new one on ``SparkContext.getOrCreate``.

        As in PySpark, this builder's settings are applied to the session's
        ``spark.conf`` either way (an existing SparkContext's own conf is
        shared and left as it is).
        """
        with SparkSession._lock:
            active = SparkSession._active
            if active is None or active.sparkContext.stopped:
                active = SparkSession._active = SparkSession(SparkContext.getOrCreate(self._conf))
            active._conf.setAll(self._conf.getAll())
            return active


class _BuilderProperty:
    def __get__(self, obj: Any, cls: type) -> _Builder:
        return _Builder()


class SparkSession:
    """Entry point of the SQL face: DataFrames from datasets or rows, and SQL over them."""

    builder = _BuilderProperty()
    _active: "SparkSession | None" = None
    _lock = threading.Lock()

    def __init__(self, sparkContext: SparkContext):
        self.sparkContext = sparkContext
        self._conf = sparkContext.getConf()
        self._con = import_duckdb().connect()

    @property
    def conf(self) -> SparkConf:
        """The session's settings: the SparkContext's, and the builders' ``config`` calls over them."""
        return self._conf

    def createDataFrame(self, data: Any, schema: str | Iterable[str] | None = None) -> DataFrame:
        """A DataFrame from a dataset (RDD) or list of Rows, tuples or dicts, or a pandas DataFrame.

        Column names come from ``schema``, else from the Rows' fields or dicts'
        keys, else ``_1``, ``_2`` …. ``schema`` is a list of names (types
        inferred) or a DDL string ``"word string, n int"`` (names and types;
        see :func:`parse_ddl`). Dicts and keyword Rows (``Row(a=1)``) are
        matched to the columns by name, tuples and a row class's rows by
        position. As in PySpark, an empty input without a schema is a
        ValueError.
        """
        types = None
        if isinstance(schema, str):
            schema, types = parse_ddl(schema)
        if hasattr(data, "columns") and hasattr(data, "dtypes"):        # pandas
            frame = data if schema is None else data.set_axis(list(schema), axis=1)
            if types is None:
                return DataFrame(self, self._con.from_df(frame))
            data = frame.itertuples(index=False, name=None)
        records = data.collect() if isinstance(data, Dataset) else list(data)
        names = list(schema) if schema is not None else None
        if not records and names is None:
            raise ValueError("can not infer schema from empty dataset")
        by_name = None   # the fields keyword Rows and dicts are read by, when the schema renames them
        if names is None:
            first = records[0]
            if isinstance(first, Row) and first.__fields__:
                names = list(first.__fields__)
            elif isinstance(first, dict):
                names = list(first)
            elif isinstance(first, (tuple, list)):
                names = [f"_{i + 1}" for i in range(len(first))]
            else:
                raise TypeError(f"can not infer schema for type {type(first).__name__}: give Rows, tuples or dicts")
        elif records and types is None and isinstance(records[0], (dict, Row)):
            first = records[0]
            fields = list(first) if isinstance(first, dict) else list(first.__fields__)
            if len(fields) == len(names) and fields != names and (isinstance(first, dict) or first.__from_dict__):
                by_name = fields     # a list of names renames the inferred columns, as in PySpark
        import pyarrow as pa
        columns: list[list] = [[] for _ in names]
        for r in records:
            for column, v in zip(columns, _values(r, names, by_name)):
                column.append(v)
        arrays = {}
        for i, (name, column) in enumerate(zip(names, columns)):
            if types is None:
                arrays[name] = pa.array(column)
                continue
            try:
                arrays[name] = pa.array(column, type=types[i])
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
                raise TypeError(f"createDataFrame: column {name!r} ({_ddl_name(types[i])}): {e}") from None
        return DataFrame(self, self._con.from_arrow(pa.table(arrays)))

    def sql(self, sqlQuery: str) -> DataFrame:
        """Run a query over the temp views (DuckDB's SQL dialect)."""
        return DataFrame(self, self._con.sql(sqlQuery))

    def table(self, tableName: str) -> DataFrame:
        """The temp view ``tableName`` as a DataFrame."""
        return DataFrame(self, self._con.table(tableName))

    def stop(self) -> None:
        """Close the SQL engine and stop the SparkContext, as PySpark's ``spark.stop()`` does."""
        with SparkSession._lock:
            if SparkSession._active is self:
                SparkSession._active = None
        self._con.close()
        self.sparkContext.stop()
