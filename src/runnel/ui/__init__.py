"""Seeing a running job: web UI, Spark's streaming REST API, Prometheus metrics, console progress.

A started :class:`~runnel.StreamingContext` attaches one :class:`UI`. It
observes the job only through the listener bus (a :class:`StreamingStatus`
listener) and the :class:`JobFacts` the context hands it, and serves:

- ``/`` the streaming page (overview, charts, batches, executor busy ratio,
  receivers, state, checkpoints with their write times, write-ahead logs),
  ``/batch?id=<ms>`` one batch (its output operations, stages and tasks),
  ``/graph`` the DStream graph, ``/environment`` the conf (secrets redacted);
- ``/api/v1/applications/...`` Spark's streaming REST endpoints, and runnel's
  own beside them (:mod:`.rest`);
- ``/metrics`` Prometheus text (:mod:`.metrics`, needs ``runnel[ui]``).

Conf keys (the context's conf):

=====================================  ==========  ==============================================
``spark.ui.enabled``                   true        serve the UI (default false on a ManualClock:
                                                   a test's context opens no port unless asked)
``spark.ui.port``                      4040        the next free one of the 16 after it if taken;
                                                   0 for any free port
``spark.port.maxRetries``              16          ports tried after ``spark.ui.port``; if none is
                                                   free the job runs without its UI (a warning)
``spark.ui.host``                      127.0.0.1   the address to bind; warns if not loopback
``spark.ui.showConsoleProgress``       true        the one-line progress when stdout is a
                                                   terminal (never in CI or when not a TTY)
``spark.streaming.ui.retainedBatches`` 1000        completed batches kept for the UI
=====================================  ==========  ==============================================
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ..context import conf_flag
from .server import DEFAULT_HOST, DEFAULT_PORT, PORT_RETRIES, UIServer, is_loopback
from .status import JobFacts, StreamingStatus, redact

__all__ = ["UI", "JobFacts", "StreamingStatus", "attach_ui", "redact"]
log = logging.getLogger("runnel.ui")


class UI:
    """The status listener of one context, its web server and its console progress line."""

    def __init__(self, facts: JobFacts, ui_enabled: bool):
        self.facts = facts
        self.status = StreamingStatus(facts)
        self.ui_enabled = ui_enabled
        self.server: UIServer | None = None
        self.progress = None
        self.metrics = None
        self._watching = False

    @property
    def url(self) -> str | None:
        """The web UI's address, None when it is not served."""
        return self.server.url if self.server is not None else None

    def listeners(self) -> list[Any]:
        """What the context registers on its listener bus (the status first: others read it)."""
        out: list[Any] = [self.status]
        if self.ui_enabled:
            from .metrics import JobMetrics, available
            if available():
                self.metrics = JobMetrics(self.status)
                out.append(self.metrics)
        from .progress import ConsoleProgress
        if ConsoleProgress.wanted(self.facts.conf):
            self.progress = ConsoleProgress(self.status)
            out.append(self.progress)
        return out

    def start(self) -> None:
        """Serve the web UI (when enabled) and show the progress line (when wanted)."""
        conf = self.facts.conf
        if self.ui_enabled and self.server is None:
            if self.facts.activity is not None and not self._watching:
                self._watching = True
                self.facts.activity.watch()          # the executor keeps its stage log while we serve
            host = str(conf.get("spark.ui.host", DEFAULT_HOST))
            if not is_loopback(host):
                log.warning("runnel: the streaming UI listens on %s, not only on this machine: anyone who reaches "
                            "the port sees the job (its names, figures, errors and conf)", host)
            port = int(conf.get("spark.ui.port", DEFAULT_PORT))
            try:
                self.server = UIServer(self.status, host, port,
                                       self.metrics.render if self.metrics is not None else None,
                                       int(conf.get("spark.port.maxRetries", PORT_RETRIES)))
            except OSError as e:     # the job runs on without its UI: a monitor must not stop it
                log.warning("%s; the job runs without its web UI", e)
                return self._start_progress()
            log.info("runnel: streaming UI at %s", self.server.url)
            if sys.stderr is not None and sys.stderr.isatty():
                print(f"runnel: streaming UI at {self.server.url}", file=sys.stderr)
        self._start_progress()

    def _start_progress(self) -> None:
        if self.progress is not None:
            self.progress.start()

    def stop(self) -> None:
        """Stop serving and clear the progress line (idempotent)."""
        if self.progress is not None:
            self.progress.stop()
        if self.server is not None:
            self.server.stop()
        if self._watching:
            self._watching = False
            self.facts.activity.unwatch()


def attach_ui(ssc: Any) -> UI:
    """The UI of a starting context: its listeners registered; :meth:`UI.start` serves it.

    Uses only the context's public surface (conf, names, interval,
    checkpoint directory, graph, executor, ``add_streaming_listener``). The
    executor's activity and the write-ahead logs are read only when the web
    UI is served (the console line and the notebook do not show them).
    """
    from ..clock import ManualClock
    conf = ssc.context.conf
    enabled = conf_flag(conf, "spark.ui.enabled", not isinstance(ssc.clock, ManualClock))
    graph = ssc.graph
    facts = JobFacts(ssc.context.app_name, ssc.context.master, ssc.batch_ms, conf, ssc.checkpoint_dir,
                     tuple(graph.nodes()),
                     getattr(ssc.context.executor, "activity", None) if enabled else None,
                     tuple(i for i in graph.inputs if getattr(i, "wal_enabled", False)) if enabled else (),
                     getattr(ssc.context.executor, "dashboard_link", None))
    ui = UI(facts, enabled)
    for listener in ui.listeners():
        ssc.add_streaming_listener(listener)
    return ui
