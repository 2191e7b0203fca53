"""Accumulators: variables tasks add to and only the driver reads (PySpark's semantics).

A driver creates an :class:`Accumulator` (``sc.accumulator(0)``); functions
that run in tasks capture it and ``add`` to it (or ``+=``). Where each
update goes:

* a task run in the driver process (``local``, and ``local[N]`` stages
  small enough to run inline) holds the driver's object itself: ``add``
  updates it directly;
* a task on a ``local[N]`` worker holds a copy unpickled there (with the
  function it was shipped with, once per worker): its ``add`` collects into
  the copy, and when the task ends the worker drains every copy it holds
  (:func:`drain_task_updates`: the value, reset to zero) into the task's
  reply; the driver merges them (:func:`merge_task_updates`) before the
  task counts as done. So by the time an action returns, ``.value`` holds
  every update its successful tasks made. A failed task's updates are
  dropped, and a task retried after its worker died counts once. (A task
  run in the driver process has updated the driver's object as it went,
  so there the updates a failing task made before it raised remain.)

As in PySpark, a task cannot read ``.value`` of a worker copy (it would see
only its own partial sum); updates made in transformations are counted
every time the dataset is computed (cache it, or update accumulators in
actions and output operations, to count once). Accumulators are not
restored from a checkpoint; the Streaming Guide's pattern (a lazily created
singleton) works for that.

State (one module per process)
------------------------------
``_driver: dict[id, weakref]``
    Accumulators created in this process, by id; merged into by replies.
``_copies: list[weakref]``
    Copies unpickled in this process (a worker): drained after each task.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ids = itertools.count()
_lock = threading.Lock()
_driver: "dict[str, weakref.ref[Accumulator]]" = {}
_copies: "list[weakref.ref[Accumulator]]" = []


class AccumulatorParam(Generic[T]):
    """How to add values of a type: ``zero(value)`` and ``addInPlace(value1, value2)``.

    Subclass it for accumulators of other types (lists, sets, vectors …).
    """

    def zero(self, value: T) -> T:
        """The identity of ``addInPlace`` for values shaped like ``value``."""
        raise NotImplementedError

    def addInPlace(self, value1: T, value2: T) -> T:
        """``value1 + value2``; may update and return ``value1``."""
        raise NotImplementedError


class AddingAccumulatorParam(AccumulatorParam[T]):
    """Adds with ``+=``, starting from a fixed zero (int, float, complex)."""

    def __init__(self, zero_value: T):
        self.zero_value = zero_value

    def zero(self, value: T) -> T:
        return self.zero_value

    def addInPlace(self, value1: T, value2: T) -> T:
        value1 += value2  # type: ignore[operator]
        return value1


INT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0)
FLOAT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0)
COMPLEX_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0j)


def default_param(value: Any) -> AccumulatorParam:
    """The param for an int, float or complex initial value; TypeError for other types."""
    if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
        raise TypeError(f"No default accumulator param for type {type(value)}; pass an AccumulatorParam")
    if isinstance(value, int):
        return INT_ACCUMULATOR_PARAM
    return FLOAT_ACCUMULATOR_PARAM if isinstance(value, float) else COMPLEX_ACCUMULATOR_PARAM


class Accumulator(Generic[T]):
    """A shared variable tasks can only add to; the driver reads :attr:`value`.

    Examples
    --------
    >>> from runnel import Context
    >>> ctx = Context("local")
    >>> acc = Accumulator(0)
    >>> ctx.parallelize([1, 2, 3, 4]).foreach(lambda x: acc.add(x))
    >>> acc.value
    10
    >>> acc += 5; acc.value
    15
    >>> ctx.stop()
    """

    def __init__(self, value: T, accum_param: AccumulatorParam[T] | None = None, aid: str | None = None):
        self.accum_param = default_param(value) if accum_param is None else accum_param
        self.aid = aid if aid is not None else f"{os.getpid()}-{next(_ids)}"
        self._value = value
        self._is_copy = aid is not None
        self._dirty = False
        self._lock = threading.Lock()
        if not self._is_copy:
            with _lock:
                _driver[self.aid] = weakref.ref(self, lambda _, aid=self.aid: _driver.pop(aid, None))

    @property
    def value(self) -> T:
        """The merged value (driver only)."""
        if self._is_copy:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        if self._is_copy:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        self._value = value

    def add(self, term: T) -> None:
        """Add ``term`` (in a task or on the driver)."""
        with self._lock:
            self._value = self.accum_param.addInPlace(self._value, term)
            self._dirty = True

    def __iadd__(self, term: T) -> "Accumulator[T]":
        self.add(term)
        return self

    def __reduce__(self):
        # a task's copy starts at zero and is drained after every task (see the module docstring)
        return (_task_copy, (self.aid, self.accum_param.zero(self._value), self.accum_param))

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value}>"


def _task_copy(aid: str, zero: Any, param: AccumulatorParam) -> Accumulator:
    acc = Accumulator(zero, param, aid)
    with _lock:
        _copies.append(weakref.ref(acc))
    return acc


def drain_task_updates() -> list[tuple[str, Any]]:
    """In a worker, after a task: (id, value) of every copy added to since the last drain,
    each reset to its zero. Copies whose function the worker dropped are forgotten."""
    out = []
    with _lock:
        live = [a for a in (r() for r in _copies) if a is not None]
        _copies[:] = [weakref.ref(a) for a in live]
    for acc in live:
        with acc._lock:
            if not acc._dirty:
                continue
            value, acc._value = acc._value, acc.accum_param.zero(acc._value)
            acc._dirty = False
        out.append((acc.aid, value))
    return out


def merge_task_updates(updates: list[tuple[str, Any]]) -> None:
    """On the driver: add a task's updates into the accumulators they belong to."""
    for aid, value in updates:
        ref = _driver.get(aid)
        acc = ref() if ref is not None else None
        if acc is not None:
            acc.add(value)
