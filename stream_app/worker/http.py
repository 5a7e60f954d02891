"""The worker's HTTP endpoint: ``GET /metrics`` (Prometheus) and ``GET /health`` (JSON).

A small WSGI server in a daemon thread (the event loop is busy with records): scrapes never
wait for the loop, and the loop never waits for a scrape. ``/health`` answers 200 while the
worker is alive (also when it is paused waiting for storage: ``"status": "degraded"``) and 503
when its cycle loop stopped or the Faust app crashed, so an orchestrator restarts only what a
restart can fix.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["HealthReport", "MetricsServer"]

logger = logging.getLogger(__name__)

HealthReport = Callable[[], tuple[bool, dict[str, Any]]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class MetricsServer:
    """Serves one registry and a health report on ``host:port`` (port 0: any free port)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: HealthReport
    ) -> None:
        self._host = host
        self._port = port
        self._metrics = make_wsgi_app(registry)
        self._health = health
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/health":
            healthy, doc = self._health()
            body = json.dumps(doc, separators=(",", ":")).encode()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        if path in ("/metrics", "/"):
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /health\n"]

    def start(self) -> int:
        """Bind and serve in a daemon thread; returns the port."""
        self._server = make_server(
            self._host,
            self._port,
            self._app,
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pwm-worker-metrics", daemon=True
        )
        self._thread.start()
        logger.info("worker metrics on http://%s:%d/metrics", self._host, self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._server = None
        self._thread = None
