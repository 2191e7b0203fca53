"""``SparkConf``: PySpark's configuration object (``pyspark.conf``)."""

from __future__ import annotations

from typing import Iterable


class SparkConf:
    """Key-value settings, values kept as strings (as in PySpark); setters chain.

    runnel honours ``spark.master``, ``spark.app.name``,
    ``spark.default.parallelism`` and ``spark.streaming.clock``
    (``org.apache.spark.util.ManualClock`` gives a manual clock, as in
    Spark's own tests); other keys are kept and ignored.

    Examples
    --------
    >>> conf = SparkConf().setMaster("local[2]").setAppName("wordcount").set("spark.default.parallelism", 4)
    >>> conf.get("spark.default.parallelism"), conf.contains("spark.master"), conf.get("missing", "x")
    ('4', True, 'x')
    >>> sorted(conf.getAll())[0]
    ('spark.app.name', 'wordcount')
    """

    def __init__(self, loadDefaults: bool = True, _jvm=None, _jconf=None):
        self._conf: dict[str, str] = {}

    def set(self, key: str, value) -> "SparkConf":
        """Set ``key`` to ``str(value)``."""
        self._conf[str(key)] = str(value)
        return self

    def setIfMissing(self, key: str, value) -> "SparkConf":
        if key not in self._conf:
            self.set(key, value)
        return self

    def setMaster(self, value: str) -> "SparkConf":
        return self.set("spark.master", value)

    def setAppName(self, value: str) -> "SparkConf":
        return self.set("spark.app.name", value)

    def setSparkHome(self, value: str) -> "SparkConf":
        return self.set("spark.home", value)

    def setExecutorEnv(self, key: str | None = None, value: str | None = None,
                       pairs: Iterable[tuple[str, str]] | None = None) -> "SparkConf":
        if (key is not None and pairs is not None) or (key is None and pairs is None):
            raise ValueError("Either pass one key-value pair or a list of pairs")
        for k, v in ([(key, value)] if key is not None else pairs):
            self.set("spark.executorEnv." + k, v)
        return self

    def setAll(self, pairs: Iterable[tuple[str, str]]) -> "SparkConf":
        for k, v in pairs:
            self.set(k, v)
        return self

    def get(self, key: str, defaultValue: str | None = None) -> str | None:
        return self._conf.get(key, defaultValue)

    def getAll(self) -> list[tuple[str, str]]:
        return list(self._conf.items())

    def contains(self, key: str) -> bool:
        return key in self._conf

    def toDebugString(self) -> str:
        return "\n".join(f"{k}={v}" for k, v in self._conf.items())

    def __repr__(self) -> str:
        return f"SparkConf({self._conf!r})"
