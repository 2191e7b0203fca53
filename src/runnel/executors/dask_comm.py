"""Calls to a Dask scheduler whose connection may drop: bounded retries, then an error that says where.

A ``Client`` whose connection to the scheduler closes (a network blip, the
scheduler restarting) reconnects on its own for its ``timeout``; meanwhile
``scatter`` raises ``OSError`` (``CommClosedError`` is one) and ``gather``
raises ``CancelledError`` for every future the connection held. The
executor and its store make each such call through :func:`retrying`: the
call is made again after a backoff (doubling from ``BACKOFF[0]`` up to
``BACKOFF[1]`` seconds) until it works or ``budget`` seconds have gone, or
the client gave up reconnecting (its status is ``closed``); then
:class:`ClusterUnreachable` names the scheduler's address and what was being
done (the stage's label, which names the batch). Nothing the driver holds
is lost meanwhile: received blocks stay frozen in the driver (and in the
write-ahead log, when on) until a stage's tasks read them.
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError
from typing import Callable, TypeVar

__all__ = ["ClusterUnreachable", "retrying", "is_comm_error", "RETRY_SECONDS_KEY", "RETRY_SECONDS", "BACKOFF"]

#: Conf key: seconds a call to the scheduler is retried for before the batch fails.
RETRY_SECONDS_KEY = "runnel.dask.retrySeconds"
RETRY_SECONDS = 30.0
#: First and longest wait (seconds) between two attempts.
BACKOFF = (0.05, 2.0)

T = TypeVar("T")


class ClusterUnreachable(RuntimeError):
    """The Dask scheduler could not be reached within the retry budget.

    ``address`` is the scheduler's, ``what`` the operation (with the stage
    label, which names the stream and batch time), ``attempts`` how many
    times it was tried.
    """

    def __init__(self, address: str, what: str, attempts: int, seconds: float, last: BaseException):
        self.address, self.what, self.attempts = address, what, attempts
        super().__init__(f"the Dask scheduler at {address} cannot be reached: {what} failed {attempts} "
                         f"time(s) over {seconds:.1f} s (last: {type(last).__name__}: {last}); "
                         f"the batch fails, the data it received stays in the driver and in the write-ahead "
                         f"log if enabled ({RETRY_SECONDS_KEY} sets how long to retry)")

    def __reduce__(self):
        return (_unreachable, (str(self), self.address, self.what, self.attempts))


def _unreachable(text: str, address: str, what: str, attempts: int) -> ClusterUnreachable:
    e = ClusterUnreachable.__new__(ClusterUnreachable)
    RuntimeError.__init__(e, text)
    e.address, e.what, e.attempts = address, what, attempts
    return e


def is_comm_error(exc: BaseException) -> bool:
    """Is ``exc`` what a dropped scheduler connection raises (not a task's or the user's error)?"""
    if isinstance(exc, CancelledError):
        # a future cancelled by the client because its connection closed (any other cancel is ours)
        return "connection" in str(exc) or "scheduler" in str(exc)
    return isinstance(exc, (OSError, TimeoutError)) and not isinstance(exc, FileNotFoundError)


def retrying(client, address: str, what: str, attempt: Callable[[], T], budget: float,
             on_retry: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> T:
    """``attempt()``, made again while it fails with a connection error, for ``budget`` seconds at most.

    ``on_retry()`` runs before each new attempt (it may raise a connection
    error too, which counts as that attempt's). Raises
    :class:`ClusterUnreachable` (naming ``address``) when the budget is spent
    or the client closed (a closed client raises anything on a call).
    """
    started = time.monotonic()
    delay = BACKOFF[0]
    attempts = 0
    while True:
        attempts += 1
        try:
            if attempts > 1 and on_retry is not None:
                on_retry()
            return attempt()
        except BaseException as exc:
            closed = client.status in ("closed", "closing")
            if not (closed or is_comm_error(exc)):
                raise
            last = exc
        spent = time.monotonic() - started
        if closed or spent + delay > budget:
            raise ClusterUnreachable(address, what, attempts, spent, last) from last
        sleep(delay)
        delay = min(2 * delay, BACKOFF[1])
