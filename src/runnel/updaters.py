"""Ready state updaters, ``StateSpec`` and the ``State`` handle of mapWithState.

Built-in updaters for ``updateStateByKey`` run as kernels: each batch's new
values are reduced to one partial per key and merged into the columnar state
table (``runnel.kernels.state``), never calling Python per key. They are also
plain ``f(values, state)`` functions, so they behave exactly as the PySpark
function they stand for when called directly.

>>> from runnel import updaters
>>> counts = pairs.update_state_by_key(updaters.running_count(ttl=60))  # doctest: +SKIP
>>> updaters.running_sum()([1, 2], 10)
13

A time-to-live (seconds) removes a key that has had no new value for that
long: with a 1 s batch and ``ttl=2``, a key last updated at t is still in the
state at t+1 and gone at t+2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Updater", "running_sum", "running_count", "running_min", "running_max", "running_mean",
           "last_value", "StateSpec", "State"]


@dataclass(frozen=True)
class Updater:
    """A built-in ``updateStateByKey`` function: ``kind`` names the aggregate."""
    kind: str               # "sum", "count", "min", "max", "mean", "last"
    ttl: float | None = None

    def __post_init__(self):
        if self.kind not in _PARTIAL:
            raise ValueError(f"unknown updater kind {self.kind!r}")
        if self.ttl is not None and (isinstance(self.ttl, bool) or not isinstance(self.ttl, (int, float))
                                     or self.ttl <= 0):
            raise ValueError(f"ttl must be a positive number of seconds or None, got {self.ttl!r}")

    @property
    def ttl_ms(self) -> int:
        return 0 if self.ttl is None else round(self.ttl * 1000)

    @property
    def merge_op(self) -> str:
        """How a batch's partial is folded into the state (``kernels.state.MERGE_OPS``)."""
        return _PARTIAL[self.kind]

    def __call__(self, values: list, state: Any) -> Any:
        """The PySpark function this updater stands for (without the time-to-live)."""
        if self.kind == "mean":
            s, c = (0, 0) if state is None else (state[0], state[1])
            for v in values:
                s, c = s + v, c + 1
            return (s, c) if c else None
        acc = state
        for v in values:
            if self.kind == "count":
                acc = (acc or 0) + 1
            elif acc is None:
                acc = v
            elif self.kind == "sum":
                acc = acc + v
            elif self.kind == "min":
                acc = min(acc, v)
            elif self.kind == "max":
                acc = max(acc, v)
            else:
                acc = v
        return acc

    def __repr__(self) -> str:
        return f"updaters.{_NAMES[self.kind]}(ttl={self.ttl!r})"


#: merge op of each kind: count merges partial counts, mean partial (sum, count) pairs, by "sum"
_PARTIAL = {"sum": "sum", "count": "sum", "min": "min", "max": "max", "mean": "sum", "last": "last"}
_NAMES = {"sum": "running_sum", "count": "running_count", "min": "running_min", "max": "running_max",
          "mean": "running_mean", "last": "last_value"}


def running_sum(ttl: float | None = None) -> Updater:
    """State = sum of every value of the key so far."""
    return Updater("sum", ttl)


def running_count(ttl: float | None = None) -> Updater:
    """State = number of values of the key so far."""
    return Updater("count", ttl)


def running_min(ttl: float | None = None) -> Updater:
    """State = smallest value so far (Python's ``min``: a NaN seen first stays)."""
    return Updater("min", ttl)


def running_max(ttl: float | None = None) -> Updater:
    """State = largest value so far."""
    return Updater("max", ttl)


def running_mean(ttl: float | None = None) -> Updater:
    """State = mean of the values so far (kept as sum and count; the stream emits the mean)."""
    return Updater("mean", ttl)


def last_value(ttl: float | None = None) -> Updater:
    """State = the latest value (arrival order)."""
    return Updater("last", ttl)


# --- mapWithState ---------------------------------------------------------------------

class StateSpec:
    """What ``map_with_state`` does: ``StateSpec.function(fn).initial_state(ds).num_partitions(n).timeout(s)``.

    ``fn(key, value, state)`` is called once per new record, in arrival order,
    and returns the record emitted in the mapped stream. With a timeout, a key
    without new data for ``timeout`` seconds gets one last call
    ``fn(key, None, state)`` with ``state.is_timing_out()`` True and is removed.
    """

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"StateSpec.function expects a function, got {type(fn).__name__}")
        self.fn = fn
        self.initial: Any = None
        self.partitions: int | None = None
        self.timeout_s: float | None = None

    @classmethod
    def function(cls, fn: Callable) -> "StateSpec":
        return cls(fn)

    def initial_state(self, dataset: Any) -> "StateSpec":
        """Earlier state: a Dataset (or list) of (key, state) pairs."""
        self.initial = dataset
        return self

    def num_partitions(self, n: int) -> "StateSpec":
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_partitions must be a positive int, got {n!r}")
        self.partitions = n
        return self

    def timeout(self, seconds: float) -> "StateSpec":
        """Remove keys idle for ``seconds`` (after a last call that sees ``is_timing_out()``)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {seconds!r}")
        self.timeout_s = seconds
        return self

    def __repr__(self) -> str:
        return f"StateSpec({getattr(self.fn, '__qualname__', self.fn)!r}, timeout={self.timeout_s})"


class State:
    """The state of one key inside a ``map_with_state`` function."""

    __slots__ = ("_exists", "_value", "_timing_out", "_touched")

    def __init__(self, exists: bool = False, value: Any = None, timing_out: bool = False):
        self._exists = exists
        self._value = value
        self._timing_out = timing_out
        self._touched = False

    def exists(self) -> bool:
        return self._exists

    def get(self) -> Any:
        """The state; raises ``KeyError`` when the key has none (Spark: NoSuchElementException)."""
        if not self._exists:
            raise KeyError("State is not set")
        return self._value

    def get_option(self) -> Any:
        """The state, or None when there is none."""
        return self._value if self._exists else None

    def update(self, value: Any) -> None:
        if self._timing_out:
            raise RuntimeError("Cannot update the state of a key that is timing out")
        self._exists, self._value, self._touched = True, value, True

    def remove(self) -> None:
        if self._timing_out:
            raise RuntimeError("Cannot remove the state of a key that is timing out")
        self._exists, self._value, self._touched = False, None, True

    def is_timing_out(self) -> bool:
        return self._timing_out

    def __repr__(self) -> str:
        return f"State({self._value!r})" if self._exists else "State(<none>)"
