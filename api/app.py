"""The API application, assembled in one place.

``create_app`` builds the FastAPI app around open
:class:`~stream_app.storage.queries.StorageQueries` and mounts one router per area
(:mod:`api.routes`) plus any the hosting process adds (``routers=``: ``serve`` adds ingest):

=================== =======================================================================
``/api/v1/...``     REST v1 (:mod:`api.routes.query`, :mod:`api.routes.alerts`,
                    :mod:`api.routes.rules`); read role, rule writes admin
``/metrics``        the window gauges of :mod:`api.prometheus` and the API's own counters
``/healthz``        the process answers (liveness; open)
``/readyz``         storage answered the last read; 503 naming the failing dependency (open)
``/docs``           the OpenAPI document (``/openapi.json``) and its UI; read role
``/``, ``/static``  the web dashboard (:mod:`api.routes.dashboard`; static, open)
``/grafana/...``    the Grafana JSON datasource (:mod:`api.routes.grafana`); read role
=================== =======================================================================

Auth is one dependency (:func:`api.auth.require_role`) over the app's
:class:`~api.auth.Authenticator`. Errors are problem+json (:mod:`api.problems`). The window feed
runs in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import AuthCounters, Authenticator, Role, require_role
from api.problems import PROBLEM_JSON, install_problem_handlers
from api.prometheus import WindowAggregateCollector
from api.query_cache import QueryCache
from api.routes import alerts, export, grafana, health, query, rules, sql
from api.routes.dashboard import mount_dashboard
from api.routes.query import QueryCounters
from api.settings import ApiSettings
from api.window_feed import FeedStatus, WindowFeed
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_tiers import Retention

__all__ = ["create_app"]


class _ApiCollector(Collector):
    def __init__(self, status: FeedStatus, auth: AuthCounters, queries: QueryCounters) -> None:
        self._status = status
        self._auth = auth
        self._queries = queries

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
        refused = CounterMetricFamily(
            "pwm_api_auth_refusals", "Requests refused by auth", labels=("reason",)
        )
        refused.add_metric(["no_token"], self._auth.unauthenticated)
        refused.add_metric(["invalid_token"], self._auth.invalid_token)
        refused.add_metric(["forbidden"], self._auth.forbidden)
        yield refused
        yield CounterMetricFamily(
            "pwm_api_query_failures",
            "REST reads that failed because storage did not answer",
            value=self._queries.failures,
        )


_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, every 4xx/5xx answer declared as ``application/problem+json``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                for code, response in operation.get("responses", {}).items():
                    if str(code)[0] in "45":
                        response["content"] = {
                            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                        }
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = _PROBLEM_SCHEMA
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    settings: ApiSettings,
    queries: StorageQueries,
    *,
    routers: Sequence[APIRouter] = (),
    rules_path: Path | None = None,
    retention: Retention | None = None,
    clock_s: Callable[[], float] | None = None,
) -> FastAPI:
    """The API app; its lifespan refreshes the window gauges every ``refresh_interval_s``.

    ``routers`` are mounted as given (they declare their own prefix and auth, e.g.
    ``dependencies=[Depends(require_role(Role.INGEST))]``). ``rules_path`` is the alert rules
    file ``/api/v1/rules`` reads and (admin) rewrites; without it the rules routes answer 404.
    ``retention`` is the tiers' TTLs (``Retention.from_settings(storage_settings)``; default:
    the storage defaults): series skip a tier that no longer holds the start of their range.
    """
    clock: dict[str, Any] = {} if clock_s is None else {"clock_s": clock_s}
    registry = CollectorRegistry()
    collector = WindowAggregateCollector(staleness_s=settings.staleness_s, **clock)
    feed = WindowFeed(queries, collector, settings, **clock)
    authenticator = Authenticator.from_settings(settings)
    registry.register(collector)
    query_counters = QueryCounters()
    registry.register(_ApiCollector(feed.status, authenticator.counters, query_counters))

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
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.feed = feed
    app.state.registry = registry
    app.state.authenticator = authenticator
    app.state.query_counters = query_counters
    app.state.query_cache = QueryCache(settings.cache_ttl_s)
    app.state.queries = queries
    app.state.settings = settings
    app.state.rules_path = rules_path
    app.state.retention = retention or Retention.default()
    app.state.clock_s = clock_s
    install_problem_handlers(app)
    # A fleet-wide summary is ~800 bytes per scope of JSON; clients that accept gzip get ~10x less
    app.add_middleware(GZipMiddleware, minimum_size=4_096, compresslevel=5)

    read = [Depends(require_role(Role.READ))]

    @app.get("/metrics", include_in_schema=False, dependencies=read)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False, dependencies=read)
    def openapi() -> JSONResponse:
        return JSONResponse(_openapi_with_problems(app))

    @app.get("/docs", include_in_schema=False, dependencies=read)
    def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="openapi.json", title=f"{app.title} API")

    for area in (health, query, alerts, rules, grafana, export, sql):
        app.include_router(area.router)
    for router in routers:
        app.include_router(router)
    mount_dashboard(app)  # / and /static: the web dashboard (docs/dashboard.md)
    return app
