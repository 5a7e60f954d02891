"""Instrumented ProxyWhirl -> producer -> embedded pipeline -> ClickHouse (chDB): the stored
window aggregates are exactly what the requests were.

The producer's transport is teed: every envelope goes to the real in-process pipeline and is
also kept, so the expected aggregates are computed here, independently, from the events sent.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from producer import MetricsProducer, ProducerSettings, Transport
from producer.integrations.proxywhirl import instrument
from schemas.wire import WireEvent
from stream_app.embedded.pipeline import EmbeddedPipeline
from stream_app.settings import PipelineSettings
from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.integration_proxywhirl.helpers import (
    DEFAULT_POOL,
    DEFAULT_REGION,
    FLEET_KEY,
    SOURCE_HOST,
    Capture,
    async_rotator,
    sync_rotator,
)
from tests.support.proxies import ProxyLab

WINDOW_S = 10
PATHS = ("/ok", "/404", "/500", "/503", "/ok", "/bytes?n=3000")
ALL_PROXIES = ("healthy", "slow", "auth", "dead")

pytestmark = pytest.mark.slow


class TeeTransport:
    """Keeps a copy of every envelope, then hands it to the pipeline's transport."""

    def __init__(self, inner: Transport, capture: Capture) -> None:
        self._inner = inner
        self._capture = capture

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        self._inner.send(pool, payload, event_count)
        self._capture.deliver(pool, payload)

    def close(self) -> None:
        self._inner.close()


class ListDeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def put(self, *, source: str, partition: int, offset: int, payload: bytes, reason: str) -> None:
        self.reasons.append(reason)


@pytest.fixture
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StorageSettings, Any]]:
    # chDB hosts one data path per process: reuse the one another area's tests opened.
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    settings = StorageSettings(dsn=f"chdb://{path}", database=f"pw_{uuid.uuid4().hex[:12]}")
    client: StorageClient = get_client(settings)
    Migrator(client, settings).migrate()
    yield settings, client
    client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")


def _status_class(status: int | None) -> str:
    return "none" if status is None else f"{status // 100}xx"


def _expected(events: list[WireEvent]) -> dict[tuple[int, str, str], dict[str, Any]]:
    groups: dict[tuple[int, str, str], list[WireEvent]] = defaultdict(list)
    for event in events:
        start_ms = event.ts_ms // (WINDOW_S * 1000) * WINDOW_S * 1000
        groups[(start_ms, event.pool, event.region)].append(event)
    return {
        key: {
            "requests": len(group),
            "successes": sum(e.outcome == "success" for e in group),
            "outcomes": dict(Counter(str(e.outcome) for e in group)),
            "status_classes": dict(Counter(_status_class(e.status_code) for e in group)),
            "bytes_in": sum(e.bytes_in for e in group),
            "bytes_out": sum(e.bytes_out for e in group),
            "attempts": sum(e.attempts for e in group),
            "latency_sum_ms": sum(e.latency_ms for e in group),
            "latency_min_ms": min(e.latency_ms for e in group),
            "latency_max_ms": max(e.latency_ms for e in group),
        }
        for key, group in groups.items()
    }


def _nonzero(mapping: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in mapping.items() if value}


async def _traffic(lab: ProxyLab, producer: MetricsProducer) -> None:
    sync_r = sync_rotator(lab, ALL_PROXIES)
    async_r = async_rotator(lab, ALL_PROXIES)
    instrument(sync_r, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)
    instrument(async_r, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)

    def sync_calls() -> None:
        for i in range(18):
            try:
                sync_r.get(lab.target_url(PATHS[i % len(PATHS)]))
            except Exception:  # failures are part of the traffic
                continue

    async def async_call(path: str) -> None:
        try:
            await async_r.get(lab.target_url(path))
        except Exception:  # failures are part of the traffic
            return

    with ThreadPoolExecutor(max_workers=1) as pool:
        sync_done = asyncio.wrap_future(pool.submit(sync_calls))
        async with async_r:
            await asyncio.gather(*(async_call(PATHS[i % len(PATHS)]) for i in range(24)))
        await sync_done


async def test_stored_window_aggregates_match_the_requests(
    lab: ProxyLab, storage: tuple[StorageSettings, StorageClient]
) -> None:
    settings, client = storage
    dead_letters = ListDeadLetters()
    pipeline = EmbeddedPipeline(
        PipelineSettings(window_s=WINDOW_S, proxy_window_s=60, flush_interval_ms=200),
        ClickHouseSink(client, settings),
        dead_letters,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(pipeline.run(stop))
    capture = Capture()
    producer = MetricsProducer(
        ProducerSettings(
            source_host=SOURCE_HOST, fleet_key=FLEET_KEY, close_at_exit=False, batch_max_age_ms=50
        ),
        TeeTransport(pipeline.transport(), capture),
    )
    try:
        await _traffic(lab, producer)
        assert await producer.aflush(timeout_s=10.0)
    finally:
        await producer.aclose()
        stop.set()
        await asyncio.wait_for(running, timeout=60.0)

    events = capture.events()
    assert len(events) == 42
    assert dead_letters.reasons == []
    assert pipeline.stats.events == len(events)
    assert len({e.outcome for e in events}) >= 3

    start_ms = min(e.ts_ms for e in events) // 60_000 * 60_000
    end_ms = max(e.ts_ms for e in events) + 60_000
    queries = StorageQueries(client, settings.database)
    expected = _expected(events)
    stored = {
        (row.window_start_ms, row.pool, row.region): row
        for row in await asyncio.to_thread(queries.window_totals, start_ms, end_ms)
    }
    assert set(stored) == set(expected)
    for key, want in expected.items():
        row = stored[key]
        assert row.window_s == WINDOW_S
        got = {
            "requests": row.requests,
            "successes": row.successes,
            "outcomes": _nonzero(row.outcomes),
            "status_classes": _nonzero(row.status_classes),
            "bytes_in": row.bytes_in,
            "bytes_out": row.bytes_out,
            "attempts": row.attempts,
        }
        assert got == {k: v for k, v in want.items() if not k.startswith("latency")}, key
        assert math.isclose(row.latency_sum_ms, want["latency_sum_ms"], rel_tol=1e-6)
        assert math.isclose(row.latency_min_ms or -1, want["latency_min_ms"], rel_tol=1e-6)
        assert math.isclose(row.latency_max_ms or -1, want["latency_max_ms"], rel_tol=1e-6)
        assert row.late_events == 0

    # Percentiles from the stored buckets agree with the raw latencies within the 1% bound.
    rows = await asyncio.to_thread(
        queries.percentiles, start_ms, end_ms, [0.5, 0.95], by_window=False
    )
    for quantile_row in rows:
        scope = (quantile_row.pool, quantile_row.region)
        raw = sorted(e.latency_ms for e in events if (e.pool, e.region) == scope)
        assert quantile_row.requests == len(raw)
        for q, value in quantile_row.quantiles.items():
            exact = raw[math.floor(q * (len(raw) - 1))]
            assert value is not None
            assert abs(value - exact) <= 0.0101 * exact, (scope, q)

    # Per proxy: every event with a proxy id is in the per-proxy table.
    per_proxy = Counter(e.proxy_id for e in events if e.proxy_id is not None)
    proxy_rows = await asyncio.to_thread(queries.proxy_totals, start_ms, end_ms)
    stored_per_proxy: Counter[str | None] = Counter()
    for proxy_row in proxy_rows:
        stored_per_proxy[proxy_row.proxy_id] += proxy_row.requests
    assert stored_per_proxy == per_proxy
