"""REST v1 reads of the stored aggregates: pools, regions, summary, series, top proxies.

HTTP concerns only: parameters are validated here, then the views of
:mod:`stream_app.storage.query_views` (the one query layer every reader shares) answer, off the
event loop. Storage failures become 503 problems without the engine's text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from api.auth import AUTH_RESPONSES, Role, require_role
from api.query_cache import QueryCache
from api.routes.params import (
    EndParam,
    Pool,
    RangeParam,
    Region,
    StartParam,
    now_ms,
    time_range,
)
from api.routes.rules import current_rules
from api.settings import ApiSettings
from schemas.events import LABEL_PATTERN, Outcome
from stream_app.storage.errors import StorageError
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_metrics import SeriesMetric
from stream_app.storage.query_tiers import Retention
from stream_app.storage.query_views import (
    OffendersView,
    SeriesView,
    SummaryView,
    offenders_view,
    read_scope_series,
    render_series,
    series_choice,
    summary_view,
)

__all__ = ["QueryCounters", "cached_query", "router", "run_query"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class QueryCounters:
    """Storage reads that failed since start (``/metrics``)."""

    failures: int = 0


router = APIRouter(
    prefix="/api/v1",
    tags=["query"],
    dependencies=[Depends(require_role(Role.READ))],
    responses=AUTH_RESPONSES,
)

T = TypeVar("T")

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Storage did not answer (problem+json)"}
}


async def run_query(request: Request, call: Callable[[], T]) -> T:
    """Run a blocking storage read in a thread; 503 (no engine text) when storage fails.

    The failure is logged with the engine's message and counted
    (``pwm_api_query_failures_total`` on ``/metrics``).
    """
    try:
        return await asyncio.to_thread(call)
    except StorageError as exc:
        counters: QueryCounters = request.app.state.query_counters
        counters.failures += 1
        logger.warning("query for %s failed: %s", request.url.path, exc)
        raise HTTPException(status_code=503, detail="storage: the query failed") from exc


async def cached_query(request: Request, key: tuple[Hashable, ...], call: Callable[[], T]) -> T:
    """:func:`run_query`, shared with the clients asking the same within the cache's time to
    live (:mod:`api.query_cache`); ``key`` holds the route's validated parameters."""
    cache: QueryCache = request.app.state.query_cache
    bucket = cache.bucket(time.monotonic())
    return await cache.get((request.url.path, *key, bucket), lambda: run_query(request, call))


def _queries(request: Request) -> StorageQueries:
    queries: StorageQueries = request.app.state.queries
    return queries


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _retention(request: Request) -> Retention:
    retention: Retention = request.app.state.retention
    return retention


class PoolEntry(BaseModel):
    pool: str
    regions: list[str]


class PoolsView(BaseModel):
    since_ms: int
    pools: list[PoolEntry]


class RegionEntry(BaseModel):
    region: str
    pools: list[str]


class RegionsView(BaseModel):
    since_ms: int
    regions: list[RegionEntry]


SinceDays = Annotated[
    int, Query(ge=1, le=3_660, description="Pools and regions with data in the last N days")
]


async def _pairs(request: Request, days: int) -> tuple[int, list[tuple[str, str]]]:
    since_ms = now_ms(request) - days * 86_400_000
    queries = _queries(request)
    pairs = await cached_query(request, (days,), lambda: queries.pools_regions(since_ms))
    return since_ms, pairs


@router.get("/pools", summary="Pools with data, and their regions", responses=_UNAVAILABLE)
async def pools(request: Request, days: SinceDays = 30) -> PoolsView:
    since_ms, pairs = await _pairs(request, days)
    by_pool: dict[str, list[str]] = {}
    for pool, region in pairs:
        by_pool.setdefault(pool, []).append(region)
    return PoolsView(
        since_ms=since_ms,
        pools=[PoolEntry(pool=p, regions=sorted(r)) for p, r in sorted(by_pool.items())],
    )


@router.get("/regions", summary="Regions with data, and their pools", responses=_UNAVAILABLE)
async def regions(request: Request, days: SinceDays = 30) -> RegionsView:
    since_ms, pairs = await _pairs(request, days)
    by_region: dict[str, list[str]] = {}
    for pool, region in pairs:
        by_region.setdefault(region, []).append(pool)
    return RegionsView(
        since_ms=since_ms,
        regions=[RegionEntry(region=r, pools=sorted(p)) for r, p in sorted(by_region.items())],
    )


@router.get(
    "/summary",
    summary="Latest closed window per pool x region, with freshness and status",
    responses=_UNAVAILABLE,
)
async def summary(request: Request, pool: Pool = None, region: Region = None) -> SummaryView:
    settings, queries, now = _settings(request), _queries(request), now_ms(request)
    return await cached_query(
        request,
        (pool, region),
        lambda: summary_view(
            queries,
            now_ms=now,
            window_s=settings.window_s,
            settle_ms=settings.settle_ms,
            staleness_s=settings.staleness_s,
            pool=pool,
            region=region,
            rules=current_rules(request),
        ),
    )


@router.get(
    "/series",
    summary="One metric of a scope over a range (tier and step follow the range)",
    responses={**_UNAVAILABLE, 422: {"description": "Invalid parameters (problem+json)"}},
)
async def series(
    request: Request,
    metric: Annotated[SeriesMetric, Query(description="What each point shows")],
    pool: Pool = None,
    region: Region = None,
    outcome: Annotated[
        Outcome | None, Query(description="With metric=outcome_rate: which outcome")
    ] = None,
    start: StartParam = None,
    end: EndParam = None,
    range_: RangeParam = None,
    step_s: Annotated[
        int | None,
        Query(ge=10, le=365 * 86_400, description="A coarser step than chosen (seconds)"),
    ] = None,
) -> SeriesView:
    if (metric is SeriesMetric.OUTCOME_RATE) != (outcome is not None):
        raise HTTPException(
            status_code=422,
            detail="query parameter outcome: required with metric=outcome_rate, and only there",
        )
    span = time_range(request, start, end, range_, default_range="1h")
    settings, queries, retention = _settings(request), _queries(request), _retention(request)
    choice = series_choice(
        span.start_ms,
        span.end_ms,
        now_ms=span.now_ms,
        retention=retention,
        window_s=settings.window_s,
        min_step_s=step_s or 0,
    )
    # one read per scope, tier and step, shared by every metric asked of it
    data = await cached_query(
        request,
        (pool, region, choice.resolution, choice.start_ms, choice.end_ms, choice.step_s),
        lambda: read_scope_series(queries, choice, now_ms=span.now_ms, pool=pool, region=region),
    )
    return render_series(
        data,
        metric,
        now_ms=span.now_ms,
        staleness_s=settings.staleness_s,
        pool=pool,
        region=region,
        outcome=outcome,
    )


@router.get(
    "/proxies",
    summary="Top offending proxies of a pool (and region), each with its series",
    responses=_UNAVAILABLE,
)
async def proxies(
    request: Request,
    pool: Annotated[str, Query(pattern=LABEL_PATTERN, max_length=64, description="Pool name")],
    region: Region = None,
    by: Annotated[
        Literal["error_rate", "latency_p95_ms"], Query(description="What makes a proxy worse")
    ] = "error_rate",
    limit: Annotated[int, Query(ge=1, le=50, description="How many proxies")] = 10,
    min_requests: Annotated[
        int, Query(ge=1, le=1_000_000_000, description="Ignore proxies with fewer requests")
    ] = 10,
    start: StartParam = None,
    end: EndParam = None,
    range_: RangeParam = None,
) -> OffendersView:
    span = time_range(request, start, end, range_, default_range="1h")
    queries, retention = _queries(request), _retention(request)
    return await cached_query(
        request,
        (pool, region, by, limit, min_requests, start, end, range_),
        lambda: offenders_view(
            queries,
            pool=pool,
            region=region,
            order_by=by,
            start_ms=span.start_ms,
            end_ms=span.end_ms,
            now_ms=span.now_ms,
            retention=retention,
            limit=limit,
            min_requests=min_requests,
        ),
    )
