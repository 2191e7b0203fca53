"""Context: the batch-side entry point (SparkContext's role).

It owns the executor (and through it the block store) and creates Datasets
from Python data and files. A :class:`~runnel.streaming.StreamingContext`
runs on one.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from .batch import Batch, infer_column
from .dataset import BlockOwner, Dataset, OwnedBlocks, batched_slices, split_slices
from .executors import make_executor
from .memory import keep_freed_memory, wants_kept_memory


class Context:
    """Runs Datasets on an executor.

    Parameters
    ----------
    master : str
        ``"local"`` (serial, in-process), ``"local[N]"`` (N threads for kernel
        stages, N worker processes sharing blocks through shared memory for
        stages that run user Python), ``"local[*]"`` (one per core), or a
        Dask cluster: ``"dask://host:port"`` or a ``distributed.Client``
        (blocks in the workers' memory; needs ``pip install 'runnel[dask]'``).
    app_name : str
        Shown in errors and the UI.
    conf : mapping, optional
        Settings (``spark.default.parallelism`` is honoured;
        ``runnel.executor.stageKind`` = ``auto`` | ``threads`` | ``processes``
        says where ``local[N]`` runs stages, read at every stage).

    Examples
    --------
    >>> ctx = Context("local")
    >>> ctx.parallelize(range(5), 2).glom().collect()
    [[0, 1], [2, 3, 4]]
    >>> ctx.stop()
    """

    _lock = threading.RLock()
    _active: "Context | None" = None

    def __init__(self, master: str = "local[*]", app_name: str = "runnel", conf: Any = None):
        self.app_name = app_name
        self.conf = dict(conf.getAll() if hasattr(conf, "getAll") else (conf or {}))
        if wants_kept_memory(self.conf):
            keep_freed_memory()   # batches reuse freed memory instead of page-faulting it in again
        self.executor = make_executor(master, conf=self.conf)
        self.master = getattr(self.executor, "master", master)   # a Client's as "dask://host:port"
        self._stopped = False
        with Context._lock:
            Context._active = self

    #: Context classes by name, for recovery from a checkpoint (which stores the class's name)
    kinds: dict[str, type] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Context.kinds[cls.__name__] = cls

    @classmethod
    def recreate(cls, master: str, app_name: str, conf: dict) -> "Context":
        """The context a checkpoint of a context of this class is recovered on (the active one if any)."""
        return cls.get_or_create(master, app_name, conf)

    @classmethod
    def get_or_create(cls, master: str = "local[*]", app_name: str = "runnel", conf: Any = None) -> "Context":
        with cls._lock:
            if cls._active is not None and not cls._active._stopped:
                return cls._active
            return cls(master, app_name, conf)

    @property
    def default_parallelism(self) -> int:
        """``spark.default.parallelism`` if set, else the executor's parallelism."""
        p = self.conf.get("spark.default.parallelism")
        return int(p) if p else self.executor.parallelism

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _check(self) -> None:
        if self._stopped:
            raise RuntimeError("this Context has been stopped; create a new one")

    # -- datasets -------------------------------------------------------------
    def dataset_of(self, batches: list[Batch], label: str = "dataset") -> Dataset:
        """A Dataset with one partition per batch (put into the block store)."""
        self._check()
        store = self.executor.store
        owner = BlockOwner(store, store.put_many(batches))
        return Dataset(self, OwnedBlocks(owner), label)

    def empty_dataset(self, label: str = "empty") -> Dataset:
        """An empty Dataset with one partition (PySpark's empty batch)."""
        return self.dataset_of([Batch.empty()], label)

    def parallelize(self, data: Iterable, num_slices: int | None = None) -> Dataset:
        """Distribute Python data (or a NumPy array / DataFrame) into partitions.

        As in PySpark: slice i of ``range(n)`` in k slices holds
        ``[i*n//k, (i+1)*n//k)``; other data is split in chunks
        (:func:`~runnel.dataset.batched_slices`), so ``[1, 2, 3]`` in 5 slices
        is ``[[], [1], [], [2], [3]]``.
        """
        k = self.default_parallelism if num_slices is None else int(num_slices)
        if k < 1:
            raise ValueError(f"numSlices must be at least 1, got {num_slices!r}")
        if isinstance(data, range):
            n = len(data)
            batches = [Batch({"value": np.arange(data.start + a * data.step, data.start + b * data.step,
                                                 data.step, dtype=np.int64)}, "value")
                       for a, b in split_slices(n, k)]
            return self.dataset_of(batches, "parallelize")
        if isinstance(data, Batch) or not isinstance(data, (list, tuple)) and (
                hasattr(data, "__array__") or hasattr(data, "columns") or isinstance(data, (pa.Table, pa.Array))):
            whole = Batch.coerce(data)
        else:
            whole = Batch.from_records(list(data))
        n = len(whole)
        return self.dataset_of([whole.slice(a, b) for a, b in batched_slices(n, k)], "parallelize")

    def text_file(self, path: str, min_partitions: int | None = None) -> Dataset:
        """Lines of a text file, or of every ``part-*`` file in a directory."""
        self._check()
        if os.path.isdir(path):
            files = sorted(os.path.join(path, f) for f in os.listdir(path)
                           if not f.startswith((".", "_")))
        elif os.path.exists(path):
            files = [path]
        else:
            raise FileNotFoundError(f"textFile: no such file or directory: {path}")
        batches = [Batch({"value": infer_column(read_lines(f))}, "value") for f in files]
        batches = [b if len(b) else Batch.empty() for b in batches] or [Batch.empty()]
        return self.dataset_of(batches, f"textFile {path}")

    def union(self, datasets: list[Dataset]) -> Dataset:
        if not datasets:
            raise ValueError("union needs at least one dataset")
        out = datasets[0]
        for d in datasets[1:]:
            out = out.union(d)
        return out

    def stop(self) -> None:
        """Stop the executor and free every block. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.executor.close()
        with Context._lock:
            if Context._active is self:
                Context._active = None

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __reduce__(self):
        raise TypeError("It appears that you are attempting to reference the Context from a function that "
                        "is sent to workers or stored in a checkpoint. The Context can only be used on the "
                        "driver, in code that runs there (foreach_rdd, transform), not captured by it.")

    def __repr__(self) -> str:
        return f"Context(master={self.master!r}, app_name={self.app_name!r})"


Context.kinds["Context"] = Context

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def conf_flag(conf: dict, key: str, default: bool = False) -> bool:
    """A boolean setting: True/False or "true"/"false" (any case; also 1/0, yes/no, on/off).

    Anything else is a ValueError naming the key: a misspelt value must not
    silently leave a feature (say, the write-ahead log) off.
    """
    value = conf.get(key)
    if value is None:
        return default
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{key} must be true or false, got {value!r}")


def read_lines(path: str) -> list[str]:
    """Lines of a UTF-8 text file without their line terminators."""
    with open(path, encoding="utf-8", newline="") as f:
        return split_lines(f.read())


def split_lines(text: str) -> list[str]:
    """``text`` cut into lines without their terminators (a final terminator ends the last line)."""
    # Hadoop's line reader splits on \n, \r\n and \r only (str.splitlines would also split on \x0b, \u2028 ...)
    if not text:
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if text.endswith(("\n", "\r")) else lines
