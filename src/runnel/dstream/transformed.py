"""The transform primitive: a per-batch Dataset function of one or more parents.

Every narrow and keyed DStream operation is one of these; fusion of narrow
chains happens in the Dataset plan, so ``map(f).filter(g)`` runs as one task
per partition.
"""

from __future__ import annotations

from typing import Any, Callable

from ..dataset import Dataset
from ..functions import describe
from ..listener import ms_to_datetime
from .base import DStream, fn_arity

_WORDS = {1: "one", 2: "two", 3: "three"}


def per_batch_call(func: Callable, n_datasets: int, what: str) -> Callable[[list[Dataset], int], Any]:
    """``func(*datasets)`` or ``func(time, *datasets)`` as ``(datasets, t) -> result``, chosen by arity.

    PySpark checks the arity when the stream is defined (``transform`` takes
    a function of one or two arguments, ``transformWith`` of two or three);
    so does this, raising a TypeError that names the function.
    """
    if not callable(func):
        raise TypeError(f"{what} expects a function, got {type(func).__name__}: {func!r}")
    n = fn_arity(func)
    if n == n_datasets:
        return lambda dss, t: func(*dss)
    if n == n_datasets + 1:
        return lambda dss, t: func(ms_to_datetime(t), *dss)
    raise TypeError(f"{what}: func should take {_WORDS[n_datasets]} or {_WORDS[n_datasets + 1]} arguments "
                    f"(the datasets, or the batch time and the datasets); {describe(func)} takes {n}")


class TransformedDStream(DStream):
    """``fn(parent datasets, time) -> Dataset`` at every valid time."""

    def __init__(self, ssc, parents: list[DStream], fn: Callable[[list[Dataset], int], Any], kind: str,
                 user_fn: Callable | None = None):
        self.kind = kind
        super().__init__(ssc, parents)
        self.fn = fn
        self.user_fn = user_fn

    def compute(self, t: int) -> Dataset | None:
        parents = []
        for p in self.parents:
            ds = p.get_or_compute(t)
            if ds is None:
                ds = self.ssc.context.empty_dataset(f"{p.name} (no data)")
            parents.append(ds)
        out = self.fn(parents, t)
        if not isinstance(out, Dataset):
            who = describe(self.user_fn) if self.user_fn is not None else self.kind
            raise TypeError(f"{self.name}: {who} must return a Dataset (RDD), got {type(out).__name__}")
        return out


class UnionDStream(DStream):
    """Records of every parent, in argument order."""

    kind = "union"

    def __init__(self, ssc, parents: list[DStream]):
        if not parents:
            raise ValueError("union needs at least one DStream")
        slides = {p.slide_ms for p in parents}
        if len(slides) > 1:
            raise ValueError("union of DStreams with different slide durations: "
                             + ", ".join(f"{p.name} {p.slide_ms} ms" for p in parents))
        super().__init__(ssc, parents)

    def compute(self, t: int) -> Dataset | None:
        dss = [p.get_or_compute(t) for p in self.parents]
        dss = [d for d in dss if d is not None]
        if not dss:
            return None
        out = dss[0]
        for d in dss[1:]:
            out = out.union(d)
        return out
