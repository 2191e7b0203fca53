"""What a hang looks like from the inside: every thread's stack and the executor's state.

A wait that gives up (``run_batches``' "batch at ... did not complete",
:meth:`JobScheduler.wait_for_batch`) appends :func:`hang_report` to its
error, so a hang seen once under load explains itself: where each thread of
the driver is (the scheduler threads ``runnel-scheduler-1/2``, the task
threads ``runnel-task-N``, the pool's reaper) and what the executor has in
flight (:meth:`Executor.describe_state`: for ``local[N]``'s worker processes,
each worker's pid, whether it is alive and which task it runs since when;
busy workers are asked to print their own stacks to stderr).
"""

from __future__ import annotations

import sys
import threading
import traceback

__all__ = ["thread_stacks", "hang_report"]


def thread_stacks() -> str:
    """Every thread's name and current stack, most recent call last (the calling thread too)."""
    frames = sys._current_frames()
    names = {t.ident: t for t in threading.enumerate()}
    parts = []
    for ident, frame in sorted(frames.items(), key=lambda kv: getattr(names.get(kv[0]), "name", "")):
        t = names.get(ident)
        title = f"{t.name}{' (daemon)' if t.daemon else ''}" if t is not None else "unknown thread"
        parts.append(f"--- thread {title}, id {ident}:\n" + "".join(traceback.format_stack(frame)).rstrip())
    return "\n".join(parts)


def hang_report(executor=None) -> str:
    """The executor's state (when given) and every thread's stack, as text to append to an error."""
    parts = []
    if executor is not None:
        try:
            state = executor.describe_state()
        except Exception as e:  # a report must not hide the error it is appended to
            state = f"(could not describe the executor: {type(e).__name__}: {e})"
        parts.append("executor: " + state)
    parts.append("threads of the driver:\n" + thread_stacks())
    return "\n\n".join(parts)
