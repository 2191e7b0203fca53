"""StatCounter: count, mean, variance, min and max of numbers in one pass (``rdd.stats()``).

The same arithmetic as PySpark's ``pyspark.statcounter.StatCounter``
(Welford's update per value; Chan et al.'s pairwise merge of two counters,
weighted towards the larger side when one is over ten times the other), so
``rdd.stats()`` gives PySpark's figures to the last bit for the same
partitions. ``min()``/``max()`` are the values themselves (PySpark with
NumPy installed returns them as NumPy floats).
"""

from __future__ import annotations

import copy
import math
from typing import Iterable


class StatCounter:
    """Running statistics of numbers; merge counters of parts with :meth:`mergeStats`.

    Examples
    --------
    >>> s = StatCounter([1, 2, 3, 4])
    >>> s.count(), s.mean(), s.sum(), s.min(), s.max(), s.variance(), s.sampleVariance()
    (4, 2.5, 10.0, 1, 4, 1.25, 1.6666666666666667)
    >>> s.mergeStats(StatCounter([10])).count(), s.mean()
    (5, 4.0)
    >>> s
    (count: 5, mean: 4.0, stdev: 3.1622776601683795, max: 10, min: 1)
    """

    def __init__(self, values: Iterable[float] | None = None):
        self.n = 0
        self.mu = 0.0
        self.m2 = 0.0
        self.maxValue: float = float("-inf")
        self.minValue: float = float("inf")
        for v in values if values is not None else ():
            self.merge(v)

    def merge(self, value: float) -> "StatCounter":
        """Add one value."""
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.maxValue = max(self.maxValue, value)
        self.minValue = min(self.minValue, value)
        return self

    def mergeStats(self, other: "StatCounter") -> "StatCounter":
        """Add the values another counter has seen."""
        if not isinstance(other, StatCounter):
            raise TypeError(f"Can only merge StatCounters, got {type(other).__name__}")
        if other is self:
            return self.mergeStats(copy.deepcopy(other))
        if self.n == 0:
            self.n, self.mu, self.m2 = other.n, other.mu, other.m2
            self.maxValue, self.minValue = other.maxValue, other.minValue
        elif other.n != 0:
            n = self.n + other.n
            delta = other.mu - self.mu
            if other.n * 10 < self.n:
                self.mu = self.mu + (delta * other.n) / n
            elif self.n * 10 < other.n:
                self.mu = other.mu - (delta * self.n) / n
            else:
                self.mu = (self.mu * self.n + other.mu * other.n) / n
            self.maxValue = max(self.maxValue, other.maxValue)
            self.minValue = min(self.minValue, other.minValue)
            self.m2 += other.m2 + (delta * delta * self.n * other.n) / n
            self.n = n
        return self

    def copy(self) -> "StatCounter":
        return copy.deepcopy(self)

    def count(self) -> int:
        return int(self.n)

    def mean(self) -> float:
        return float(self.mu)

    def sum(self) -> float:
        return float(self.n * self.mu)

    def min(self) -> float:
        return self.minValue

    def max(self) -> float:
        return self.maxValue

    def variance(self) -> float:
        """Population variance (NaN when empty)."""
        return float("nan") if self.n == 0 else float(self.m2 / self.n)

    def sampleVariance(self) -> float:
        """Sample variance, dividing by n - 1 (NaN for fewer than 2 values)."""
        return float("nan") if self.n <= 1 else float(self.m2 / (self.n - 1))

    def stdev(self) -> float:
        return math.sqrt(self.variance())

    def sampleStdev(self) -> float:
        return math.sqrt(self.sampleVariance())

    def asDict(self, sample: bool = False) -> dict:
        """count, mean, sum, min, max, stdev and variance (sample ones with ``sample=True``)."""
        return {"count": self.count(), "mean": self.mean(), "sum": self.sum(), "min": self.min(),
                "max": self.max(), "stdev": self.sampleStdev() if sample else self.stdev(),
                "variance": self.sampleVariance() if sample else self.variance()}

    def __repr__(self) -> str:
        return (f"(count: {self.count()}, mean: {self.mean()}, stdev: {self.stdev()}, max: {self.max()}, "
                f"min: {self.min()})")
