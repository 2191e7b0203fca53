"""The driver's HTTP server: pages, the REST API and ``/metrics``, read-only.

The standard library's ``ThreadingHTTPServer`` is enough here: a few
clients poll small GET pages on loopback, and it adds no dependency; a web
framework would bring routing and async machinery this server does not
need. Every method but GET and HEAD answers 405. The server binds to
``127.0.0.1`` unless a host is configured, and warns when that host is
not a loopback address (anyone who reaches the port sees the job: its
names, figures, errors and conf, secrets redacted).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from . import pages, rest
from .status import StreamingStatus

log = logging.getLogger("runnel.ui")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4040
PORT_RETRIES = 16     # Spark's spark.port.maxRetries default: 4040, 4041, ... when taken
_STATIC = {"live.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    server_version = "runnel-ui"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def __getattr__(self, name: str):
        # any other method (POST, PUT, DELETE, PATCH, OPTIONS, ...) is refused: the UI is read-only
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def _refuse(self) -> None:
        self._send(405, "text/plain; charset=utf-8", b"runnel's UI is read-only: only GET and HEAD are allowed\n",
                   head=False, extra={"Allow": "GET, HEAD"})

    def _answer(self, head: bool) -> None:
        url = urlsplit(self.path)
        try:
            code, ctype, body = self.server.app(url.path, url.query)
        except Exception:  # noqa: BLE001 — a broken page must not kill the server thread
            log.exception("runnel: the UI failed to answer %s", self.path)
            code, ctype, body = 500, "text/plain; charset=utf-8", b"internal error (see the driver's log)\n"
        self._send(code, ctype, body, head)

    def _send(self, code: int, ctype: str, body: bytes, head: bool, extra: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 — the base class's signature
        log.debug("ui %s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False     # a port another UI holds must fail to bind: we move to the next

    def __init__(self, address, app: Callable[[str, str], tuple[int, str, bytes]]):
        self.app = app
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)


class UIServer:
    """Serves one job's status over HTTP on its own thread."""

    def __init__(self, status: StreamingStatus, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 metrics: Callable[[], bytes] | None = None, retries: int = PORT_RETRIES):
        self.status = status
        self.metrics = metrics
        self._httpd = _bind(host, port, self.handle, retries)
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="runnel-ui-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def handle(self, path: str, query: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path?query``."""
        if path.startswith("/api/"):
            code, value = rest.route(self.status, path, query)
            return code, "application/json", json.dumps(value, indent=2).encode()
        if path == "/metrics":
            if self.metrics is None:
                return 404, "text/plain; charset=utf-8", (b"/metrics needs prometheus_client: "
                                                          b"pip install 'runnel[ui]'\n")
            from .metrics import CONTENT_TYPE
            return 200, CONTENT_TYPE, self.metrics()
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            if name not in _STATIC:
                return 404, "text/plain; charset=utf-8", b"not found\n"
            return 200, _STATIC[name], resources.files(__package__).joinpath("static", name).read_bytes()
        part = parse_qs(query).get("part") == ["live"]
        if path == "/":
            return 200, "text/html; charset=utf-8", pages.overview(self.status, live_only=part).encode()
        if path in ("/batch", "/batch/"):
            ids = parse_qs(query).get("id", [""])
            found = self.status.batch(int(ids[0])) if ids[0].isdigit() else None
            if found is None:
                return 404, "text/html; charset=utf-8", pages.not_found(f"no retained batch {ids[0]!r}").encode()
            return 200, "text/html; charset=utf-8", pages.batch_page(self.status, *found, live_only=part).encode()
        if path == "/graph":
            return 200, "text/html; charset=utf-8", pages.graph_page(self.status).encode()
        if path == "/environment":
            return 200, "text/html; charset=utf-8", pages.environment(self.status).encode()
        return 404, "text/html; charset=utf-8", pages.not_found(f"no page {path}").encode()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        self._thread = None


def _bind(host: str, port: int, app, retries: int) -> _Server:
    """Bind ``port``, or the next free one of the ``retries`` following it (port 0: any free port)."""
    tries = [0] if port == 0 else range(port, port + retries + 1)
    last: OSError | None = None
    for p in tries:
        try:
            return _Server((host, p), app)
        except OSError as e:
            last = e
    raise OSError(f"runnel: the UI could not bind {host} on ports {port}..{port + retries}: {last}; "
                  f"set spark.ui.port (0 for any free port) or spark.ui.enabled=false")
