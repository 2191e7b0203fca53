"""``SparkContext``: PySpark's entry point as a :class:`runnel.Context` (``pyspark.context``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Iterable

from ..accumulators import Accumulator, AccumulatorParam
from ..context import Context
from ..dataset import Dataset
from .broadcast import Broadcast
from .conf import SparkConf

_LOG_LEVELS = {"ALL": 1, "TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
               "ERROR": logging.ERROR, "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}


class SparkContext(Context):
    """PySpark's ``SparkContext``, running on runnel's executors.

    ``master`` and ``appName`` win over ``conf``'s ``spark.master`` and
    ``spark.app.name``; without either the master is ``local[*]`` (PySpark
    would raise) and the name ``runnel``. ``spark.default.parallelism`` is
    honoured. JVM-related parameters (``gateway``, ``jsc``, ``pyFiles`` …)
    are accepted and ignored. As in PySpark, only one SparkContext runs at a
    time: use :meth:`getOrCreate`.

    Examples
    --------
    >>> from runnel.pyspark import SparkConf, SparkContext
    >>> sc = SparkContext(conf=SparkConf().setMaster("local").setAppName("demo"))
    >>> sc.master, sc.appName, sc.defaultParallelism
    ('local', 'demo', 1)
    >>> sc.parallelize(range(6), 3).glom().collect()
    [[0, 1], [2, 3], [4, 5]]
    >>> SparkContext.getOrCreate() is sc
    True
    >>> sc.stop()
    """

    _active_spark_context: "SparkContext | None" = None
    _spark_lock = threading.RLock()

    def __init__(self, master: str | None = None, appName: str | None = None, sparkHome: str | None = None,
                 pyFiles: Any = None, environment: Any = None, batchSize: int = 0, serializer: Any = None,
                 conf: SparkConf | None = None, gateway: Any = None, jsc: Any = None, profiler_cls: Any = None,
                 **_ignored: Any):
        settings = SparkConf(loadDefaults=False)
        if conf is not None:
            settings.setAll(conf.getAll() if hasattr(conf, "getAll") else dict(conf).items())
        if master:
            settings.setMaster(master)
        if appName:
            settings.setAppName(appName)
        if sparkHome:
            settings.setSparkHome(sparkHome)
        settings.setIfMissing("spark.master", "local[*]").setIfMissing("spark.app.name", "runnel")
        with SparkContext._spark_lock:
            active = SparkContext._active_spark_context
            if active is not None and not active.stopped:
                raise ValueError(f"Cannot run multiple SparkContexts at once; existing SparkContext"
                                 f"(app={active.appName}, master={active.master}); use SparkContext.getOrCreate() "
                                 "or stop() the existing one first")
            super().__init__(settings.get("spark.master"), settings.get("spark.app.name"), settings)
            SparkContext._active_spark_context = self
        self._spark_conf = settings
        self.environment = dict(environment or {})
        self.startTime = int(time.time() * 1000)
        self.applicationId = f"local-{self.startTime}"

    @classmethod
    def getOrCreate(cls, conf: SparkConf | None = None) -> "SparkContext":
        """The running SparkContext, or a new one from ``conf``."""
        with cls._spark_lock:
            active = cls._active_spark_context
            if active is not None and not active.stopped:
                return active
            return cls(conf=conf or SparkConf())

    @classmethod
    def recreate(cls, master: str, app_name: str, conf: dict) -> "SparkContext":
        """Recovery from a checkpoint: the running SparkContext, or one with the stored settings."""
        return cls.getOrCreate(SparkConf(loadDefaults=False).setAll(conf.items()).setMaster(master)
                               .setAppName(app_name))

    # -- PySpark attributes -------------------------------------------------------
    @property
    def appName(self) -> str:
        return self.app_name

    @property
    def version(self) -> str:
        from .._version import __version__
        return __version__

    @property
    def defaultMinPartitions(self) -> int:
        return min(self.default_parallelism, 2)

    def getConf(self) -> SparkConf:
        """A copy of this context's configuration."""
        return SparkConf(loadDefaults=False).setAll(self._spark_conf.getAll())

    def setLogLevel(self, logLevel: str) -> None:
        """Set the level of runnel's loggers (``"WARN"``, ``"INFO"``, ``"ERROR"`` …, as in Spark)."""
        level = _LOG_LEVELS.get(str(logLevel).upper())
        if level is None:
            raise ValueError(f"Supplied level {logLevel} did not match one of: {','.join(sorted(_LOG_LEVELS))}")
        logging.getLogger("runnel").setLevel(level)

    # -- datasets ---------------------------------------------------------------------
    def parallelize(self, c: Iterable, numSlices: int | None = None) -> Dataset:
        """Distribute ``c`` into ``numSlices`` partitions (default parallelism by default)."""
        return super().parallelize(c, numSlices)

    def range(self, start: int, end: int | None = None, step: int = 1, numSlices: int | None = None) -> Dataset:
        if end is None:
            start, end = 0, start
        return super().parallelize(range(start, end, step), numSlices)

    def textFile(self, name: str, minPartitions: int | None = None, use_unicode: bool = True) -> Dataset:
        """Lines of a text file, or of the part files of a directory (``saveAsTextFiles`` output)."""
        return self.text_file(name, minPartitions)

    def pickleFile(self, name: str, minPartitions: int | None = None) -> Dataset:
        """Records of a directory written by ``saveAsPickleFiles``."""
        from ..dstream.savers import read_pickle_files
        return read_pickle_files(self, name, minPartitions)

    def emptyRDD(self) -> Dataset:
        return self.empty_dataset("emptyRDD")

    def union(self, rdds: list[Dataset]) -> Dataset:
        return super().union(list(rdds))

    def broadcast(self, value: Any) -> Broadcast:
        """A read-only value for tasks (:class:`~runnel.pyspark.broadcast.Broadcast`)."""
        return Broadcast(value)

    def accumulator(self, value: Any, accum_param: AccumulatorParam | None = None) -> Accumulator:
        """A variable tasks add to and the driver reads (:mod:`runnel.accumulators`): updates made
        on worker processes are merged here when their tasks finish.

        ``accum_param`` is needed for values other than int, float and complex.
        """
        return Accumulator(value, accum_param)

    def setCheckpointDir(self, dirName: str) -> None:
        """Set (and create) the directory for checkpoints of this context's datasets."""
        path = os.path.abspath(os.fspath(dirName))
        os.makedirs(path, mode=0o700, exist_ok=True)
        self._checkpoint_dir = path

    def getCheckpointDir(self) -> str | None:
        """The directory set with :meth:`setCheckpointDir`, or None."""
        return getattr(self, "_checkpoint_dir", None)

    def stop(self) -> None:
        """Stop the context (idempotent); a new SparkContext may then be created."""
        super().stop()
        with SparkContext._spark_lock:
            if SparkContext._active_spark_context is self:
                SparkContext._active_spark_context = None

    def __reduce__(self):
        raise TypeError("It appears that you are attempting to reference SparkContext from a broadcast variable, "
                        "action, or transformation. SparkContext can only be used on the driver, not in code that "
                        "it run on workers or stored in a checkpoint (a function given to foreachRDD or transform "
                        "of a checkpointed StreamingContext is stored too: use rdd.context there). For more "
                        "information, see SPARK-5063.")

    def __repr__(self) -> str:
        return f"<SparkContext master={self.master} appName={self.appName}>"
