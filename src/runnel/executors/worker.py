"""A pool worker: a fresh interpreter serving one driver over a socket.

Started by :class:`~runnel.executors.pool.ProcessPoolExecutor` as
``python -m runnel.executors.worker <conn fd> <lifeline fd>`` (never forked:
the driver runs threads; never multiprocessing's spawn: it would re-import
the user's ``__main__`` and start a second streaming job).

Protocol (pickled tuples over a ``multiprocessing.connection.Connection``)
-------------------------------------------------------------------------
driver -> worker
    ``("init", sys_path, directory, prefix, tag, compression)`` once, first;
    ``("task", seq, [(fn_id, blob), ...], [forget ids], payload, [(spare, size), ...])``:
    blobs the worker lacks, ids to drop, the task pickled by ``TaskPickler``,
    then spare files its outputs may be written into (``storage/spares.py``);
    ``("stop",)``.
worker -> driver
    ``("ready", pid)``; ``("ok", seq, outputs, accumulator updates, unused spares)``,
    an output being the BlockRef of a file the worker wrote or, for a batch of at
    most 64 KiB, its Arrow IPC bytes (the driver holds it in memory: no file, no mapping);
    ``("err", seq, type name, message, traceback text, pickled exception or None, unused spares)``.
    Accumulator updates are ``runnel.accumulators.drain_task_updates()``: what the
    task added to accumulators (a failed task's are dropped).

Driver death
------------
The lifeline is a pipe whose write end only the driver holds. A watchdog
thread blocks reading it: a byte means "driver closing, exit"; EOF means the
driver died (even SIGKILL), so the worker removes every file of the driver's
prefix and exits at once, even in the middle of a long task. EOF on the
connection is handled the same way. SIGINT is ignored: Ctrl-C in a terminal
reaches the whole process group, and the driver decides what happens.
SIGUSR1 prints every thread's stack to stderr (faulthandler): the driver
sends it to a busy worker when a wait for a batch times out.

State
-----
``_fns: dict[fn id, FnRef | exception]``
    Functions shipped by the driver (or the error unpickling their blob
    raised, re-raised by every task that uses them). Filled by task messages,
    emptied by their forget lists.
``FN_LOADS``
    How many blobs this process unpickled (tests query it through a task).
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import sys
import threading
import traceback

from runnel.memory import keep_as_driver_does

FN_LOADS = 0
_fns: dict = {}


def _die_with_driver(directory: str | None, prefix: str | None) -> None:
    if directory and prefix:
        from runnel.storage.store import remove_prefix
        remove_prefix(directory, prefix)
    os._exit(0)


def _watch_lifeline(fd: int, where: list) -> None:
    try:
        data = os.read(fd, 1)
    except OSError:
        data = b""
    if data:
        os._exit(0)                          # orderly close from the driver
    _die_with_driver(*where)


def _error_reply(seq: int, exc: BaseException) -> tuple:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        import cloudpickle
        blob = cloudpickle.dumps(exc)
        pickle.loads(blob)
    except Exception:
        blob = None
    return ("err", seq, type(exc).__name__, str(exc), tb, blob)


def serve(conn, lifeline_fd: int) -> None:
    global FN_LOADS
    where: list = [None, None]                # (directory, prefix) once known
    threading.Thread(target=_watch_lifeline, args=(lifeline_fd, where), daemon=True,
                     name="runnel-lifeline").start()
    try:
        kind, sys_path, directory, prefix, tag, compression = pickle.loads(conn.recv_bytes())
    except EOFError:
        _die_with_driver(None, None)
    assert kind == "init"
    sys.path[:] = list(sys_path) + [p for p in sys.path if p not in sys_path]
    where[:] = [directory, prefix]

    from runnel.accumulators import drain_task_updates
    from runnel.executors.base import check_outputs
    from runnel.executors.shipping import loads
    from runnel.storage.ipc import batch_to_bytes
    from runnel.storage.store import SMALL_BLOCK, SharedMemoryStore
    store = SharedMemoryStore.attach(directory, prefix, tag, compression)
    send = conn.send_bytes
    dumps = pickle.dumps
    send(dumps(("ready", os.getpid())))

    while True:
        try:
            msg = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            _die_with_driver(directory, prefix)
        if msg[0] == "stop":
            break
        _, seq, blobs, forget, payload, lent = msg
        for fn_id in forget:
            _fns.pop(fn_id, None)
        for fn_id, blob in blobs:
            try:
                _fns[fn_id] = loads(blob, _fns)
                FN_LOADS += 1
            except Exception as exc:          # reported by each task that uses it
                _fns[fn_id] = exc
        produced, batches = [], None
        store.spares.give(lent)               # this task's outputs may be written into these
        try:
            fn, index, inputs, _label = loads(payload, _fns)
            batches = [[store.get(r) for r in group] for group in inputs]
            outputs = []
            for out in check_outputs(fn(index, batches)):
                if out.nbytes() <= SMALL_BLOCK:
                    outputs.append(batch_to_bytes(out))
                else:
                    outputs.append(store.put(out))
                    produced.append(outputs[-1])
            reply = ("ok", seq, outputs, drain_task_updates())
        except Exception as exc:
            store.release(produced)
            drain_task_updates()              # a failed task's accumulator updates do not count
            reply = _error_reply(seq, exc)
        else:
            store.forget(produced)            # the driver adopts them
        del batches
        reply += (store.spares.take_all(),)   # the spares not written go back to the driver
        send(dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_as_driver_does(os.environ)
    if hasattr(faulthandler, "register"):     # the driver's report of a hang asks a busy worker where it is
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    from multiprocessing.connection import Connection
    conn_fd, lifeline_fd = int(argv[0]), int(argv[1])
    serve(Connection(conn_fd), lifeline_fd)
    os._exit(0)


if __name__ == "__main__":
    # run the code of the importable module, not of __main__, so module state (FN_LOADS) has one home
    from runnel.executors.worker import main as _main
    _main(sys.argv[1:])
