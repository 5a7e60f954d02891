"""The API app over real stored windows (chDB): /metrics, /readyz, problem+json errors.

Events are aggregated the way the core does it and written with the real sink; the exposition
must agree with a ground truth computed from the events themselves: the newest *settled* window
per (pool, region), never the still-open one, never a proxy id.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.settings import ApiSettings
from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.storage.storage_builders import FlushBuilder, exact_quantile, random_events

WINDOW_MS = 10_000
# A window boundary a minute ago: recent enough for the tables' TTLs, which drop older rows.
NOW_MS = (time.time_ns() // 1_000_000 - 60_000) // WINDOW_MS * WINDOW_MS
POOLS = ("residential", "mobile")
REGIONS = ("eu-west", "us-east")

# grace 5 s + settle 2 s: at NOW the newest settled window ends at NOW - 10 s.
SETTLED_END_MS = NOW_MS - WINDOW_MS


def _settings() -> ApiSettings:
    return ApiSettings(window_s=10, grace_ms=5_000, settle_delay_ms=2_000, staleness_s=120.0)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _key(name: str, labels: dict[str, str], **more: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({**labels, **more}.items()))


def _write(storage: tuple[StorageSettings, StorageClient], events: Sequence[WireEvent]) -> None:
    settings, client = storage
    sink = ClickHouseSink(client, settings)
    builder = FlushBuilder(source="requests")
    for i in range(0, len(events), 500):
        sink.write(builder.flush(events[i : i + 500]))


@pytest.fixture
def events() -> list[WireEvent]:
    rng = random.Random(7)
    # three settled windows and the open one
    return random_events(
        rng,
        4_000,
        start_ms=NOW_MS - 4 * WINDOW_MS,
        span_ms=4 * WINDOW_MS,
        pools=POOLS,
        regions=REGIONS,
    )


def _app(storage: tuple[StorageSettings, StorageClient], database: str | None = None) -> FastAPI:
    settings, client = storage
    queries = StorageQueries(client, database or settings.database)
    return create_app(_settings(), queries, clock_s=lambda: NOW_MS / 1000)


async def _get(app: FastAPI, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.request(method, path)


async def test_metrics_expose_the_newest_settled_window_per_pool_and_region(
    api_storage: tuple[StorageSettings, StorageClient], events: list[WireEvent]
) -> None:
    _write(api_storage, events)
    app = _app(api_storage)
    assert await app.state.feed.refresh_async()
    response = await _get(app, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    settled = [e for e in events if SETTLED_END_MS - WINDOW_MS <= e.ts_ms < SETTLED_END_MS]
    for pool in POOLS:
        for region in REGIONS:
            mine = [e for e in settled if e.pool == pool and e.region == region]
            labels = {"pool": pool, "region": region}
            assert samples[_key("proxywhirl_window_requests", labels)] == len(mine)
            successes = sum(e.outcome == Outcome.SUCCESS for e in mine)
            assert samples[_key("proxywhirl_window_success_ratio", labels)] == pytest.approx(
                successes / len(mine)
            )
            assert samples[_key("proxywhirl_window_end_timestamp_seconds", labels)] == (
                SETTLED_END_MS / 1000
            )
            timeouts = Counter(e.outcome for e in mine)[Outcome.TIMEOUT]
            key = _key("proxywhirl_window_outcome_ratio", labels, outcome="timeout")
            assert samples[key] == pytest.approx(timeouts / len(mine))
            exact = exact_quantile([e.latency_ms for e in mine], 0.95)
            p95 = samples[_key("proxywhirl_window_latency_ms", labels, quantile="0.95")]
            assert p95 == pytest.approx(exact, rel=0.011)

    proxies = {e.proxy_id for e in events if e.proxy_id}
    assert not any(p in response.text for p in proxies)
    assert samples[("pwm_api_window_refreshes_total", ())] == 1
    assert samples[("pwm_api_window_scopes", ())] == len(POOLS) * len(REGIONS)


async def test_the_open_window_is_never_exposed(
    api_storage: tuple[StorageSettings, StorageClient], events: list[WireEvent]
) -> None:
    # Only the still-open window [NOW - 10 s, NOW) has data: nothing is settled yet.
    _write(api_storage, [e for e in events if e.ts_ms >= NOW_MS - WINDOW_MS])
    app = _app(api_storage)
    assert await app.state.feed.refresh_async()
    text = (await _get(app, "/metrics")).text
    assert "proxywhirl_window_requests{" not in text
    ready = await _get(app, "/readyz")
    assert ready.status_code == 200
    assert ready.json()["scopes"] == 0


async def test_readiness_follows_storage_and_failures_are_counted(
    api_storage: tuple[StorageSettings, StorageClient],
) -> None:
    app = _app(api_storage, database="api_no_such_database")
    before = await _get(app, "/readyz")
    assert before.status_code == 503
    assert before.headers["content-type"] == "application/problem+json"
    assert before.json()["detail"] == "storage: not read yet"
    assert before.json()["failing"] == ["storage"]

    assert not await app.state.feed.refresh_async()  # a real error from the engine
    after = await _get(app, "/readyz")
    assert after.status_code == 503
    assert after.json()["detail"].startswith("storage: 1 consecutive reads failed")
    assert "api_no_such_database" not in after.text  # no exception text echoed
    samples = _samples((await _get(app, "/metrics")).text)
    assert samples[("pwm_api_window_refresh_failures_total", ())] == 1

    healthy = _app(api_storage)
    assert await healthy.state.feed.refresh_async()
    assert (await _get(healthy, "/readyz")).json()["status"] == "ready"
    assert (await _get(healthy, "/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/metrics", 405)]
)
async def test_errors_are_problem_json(
    api_storage: tuple[StorageSettings, StorageClient], method: str, path: str, status: int
) -> None:
    response = await _get(_app(api_storage), path, method)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["instance"] == path
    assert body["title"] == {404: "Not found", 405: "Method not allowed"}[status]
    assert body["detail"]


def test_settings_refuse_a_staleness_below_the_window() -> None:
    with pytest.raises(ValueError, match="staleness_s"):
        ApiSettings(window_s=60, staleness_s=30)
