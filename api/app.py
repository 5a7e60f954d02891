"""The API application: Prometheus ``/metrics`` of the latest windows, liveness and readiness.

``create_app`` builds a FastAPI app around open
:class:`~stream_app.storage.queries.StorageQueries`:

========== =========================================================================
``/metrics``  the window gauges of :mod:`api.prometheus` (what the rules exported by
              ``alerts export-prometheus`` read) and the API's own feed metrics
``/healthz``  the process answers (liveness)
``/readyz``   storage answered the last read; 503 with the reason otherwise
========== =========================================================================

Errors are problem+json (:mod:`api.problems`). The window feed runs in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.problems import PROBLEM_JSON, install_problem_handlers
from api.prometheus import WindowAggregateCollector
from api.settings import ApiSettings
from api.window_feed import FeedStatus, WindowFeed
from stream_app.storage.queries import StorageQueries

__all__ = ["create_app"]


class _FeedCollector(Collector):
    def __init__(self, status: FeedStatus) -> None:
        self._status = status

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        s = self._status
        yield CounterMetricFamily(
            "pwm_api_window_refreshes", "Reads of the stored windows", value=s.refreshes
        )
        yield CounterMetricFamily(
            "pwm_api_window_refresh_failures",
            "Reads of the stored windows that failed",
            value=s.failures,
        )
        yield GaugeMetricFamily(
            "pwm_api_window_scopes", "(pool, region) pairs exposed", value=s.scopes
        )
        if s.last_success_s is not None:
            yield GaugeMetricFamily(
                "pwm_api_window_last_refresh_timestamp_seconds",
                "When the stored windows were last read successfully",
                value=s.last_success_s,
            )


def create_app(
    settings: ApiSettings,
    queries: StorageQueries,
    *,
    clock_s: Callable[[], float] | None = None,
) -> FastAPI:
    """The API app; its lifespan refreshes the window gauges every ``refresh_interval_s``."""
    clock: dict[str, Any] = {} if clock_s is None else {"clock_s": clock_s}
    registry = CollectorRegistry()
    collector = WindowAggregateCollector(staleness_s=settings.staleness_s, **clock)
    feed = WindowFeed(queries, collector, settings, **clock)
    registry.register(collector)
    registry.register(_FeedCollector(feed.status))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(feed.run(), name="pwm-api-window-feed")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="ProxyWhirl Metrics",
        summary="Window aggregates of a ProxyWhirl proxy fleet",
        lifespan=lifespan,
    )
    app.state.feed = feed
    app.state.registry = registry
    install_problem_handlers(app)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        s = feed.status
        doc = {
            "storage": "ok"
            if s.last_success_s is not None and not s.consecutive_failures
            else "failing",
            "last_refresh_s": s.last_success_s,
            "latest_window_end_ms": s.last_window_end_ms,
            "scopes": s.scopes,
        }
        if doc["storage"] == "ok":
            return JSONResponse({"status": "ready", **doc})
        detail = s.last_error or "stored windows not read yet"
        body = {"type": "about:blank", "title": "Not ready", "status": 503, "detail": detail}
        return JSONResponse({**body, **doc}, status_code=503, media_type=PROBLEM_JSON)

    return app
