"""``Broadcast``: a read-only value shared with tasks (``pyspark.broadcast``)."""

from __future__ import annotations

import itertools
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_ids = itertools.count()


class Broadcast(Generic[T]):
    """A read-only value for tasks: ``sc.broadcast(v)``, read as ``b.value``.

    It travels to workers with the functions that capture it, and reaches
    each worker once (runnel ships a function to a worker once, not with
    every task). ``unpersist()`` is accepted (the value stays usable, as in
    PySpark); after ``destroy()`` the value is gone: reading it, or
    shipping a function that captures it, raises.

    Examples
    --------
    >>> b = Broadcast([1, 2, 3])
    >>> b.value
    [1, 2, 3]
    >>> b.destroy(); b.value
    Traceback (most recent call last):
    ...
    RuntimeError: Attempted to use Broadcast(...) after it was destroyed
    """

    def __init__(self, value: T):
        self.id = next(_ids)
        self._value = value
        self._destroyed = False

    @property
    def value(self) -> T:
        if self._destroyed:
            raise RuntimeError(f"Attempted to use Broadcast({self.id}) after it was destroyed")
        return self._value

    def unpersist(self, blocking: bool = False) -> None:
        """Accepted: the value lives as long as the functions holding it."""

    def destroy(self, blocking: bool = False) -> None:
        """Drop the value; later use raises."""
        self._destroyed = True
        self._value = None  # type: ignore[assignment]

    def __reduce__(self):
        if self._destroyed:
            raise RuntimeError(f"Attempted to use Broadcast({self.id}) after it was destroyed")
        return (_restore, (self.id, self._value))

    def __repr__(self) -> str:
        return f"Broadcast({self.id})"


def _restore(bid: int, value: Any) -> Broadcast:
    b = Broadcast.__new__(Broadcast)
    b.id, b._value, b._destroyed = bid, value, False
    return b
