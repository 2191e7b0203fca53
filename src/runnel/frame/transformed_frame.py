"""A frame stream computed per batch from another stream by a function of (dataset, time)."""

from __future__ import annotations

from typing import Callable

from ..dataset import Dataset
from ..dstream.base import DStream
from ..dstream.transformed import TransformedDStream


def transformed(parent: DStream, kind: str, fn: Callable[[Dataset, int], Dataset]) -> DStream:
    """``fn(parent's dataset at t, t)`` at every batch time t."""
    return TransformedDStream(parent.ssc, [parent], lambda dss, t: fn(dss[0], t), kind)
