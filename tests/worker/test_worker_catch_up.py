"""Catching up: while a backlog of old records drains, flush cycles are spaced out.

A backlog of events minutes old is written before the worker starts. While records wait and the
watermark is far behind the wall clock, the worker skips cycles (``catch_up_flush_interval_ms``
instead of ``flush_interval_ms``): fewer, larger inserts. The totals stored must still be exact,
every offset committed, and once the backlog is gone the worker is no longer catching up.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from worker_kit import (
    all_committed,
    differences,
    fleet_scenario,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from producer.columnar import encode_columnar
from schemas.wire import WireEvent
from stream_app.simulator import FleetSimulator
from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService
from stream_app.worker.topics import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 2
AGE_MS = 180_000  # the backlog's events are 3 minutes old: far behind catch_up_behind_ms
SPAN_MS = 20_000


async def _true(value: bool) -> bool:
    return value


async def test_a_backlog_drains_with_fewer_cycles_and_exact_totals(
    kafka_bootstrap: str, worker_storage: StorageSettings
) -> None:
    prefix = unique_prefix("catchup")
    settings = worker_settings(
        kafka_bootstrap,
        prefix,
        partitions=PARTITIONS,
        catch_up_flush_interval_ms=2_000,
        catch_up_behind_ms=30_000,
    )
    await create_topics(settings)
    origin = time.time_ns() // 1_000_000 - AGE_MS
    sim = FleetSimulator(fleet_scenario(2_500.0), seed=11, origin_ms=origin)
    events = list(sim.events_between(origin, origin + SPAN_MS))
    by_pool: dict[str, list[WireEvent]] = {}
    for ev in events:
        by_pool.setdefault(ev.pool, []).append(ev)
    chunks = sorted(
        (
            (pool_events[i].ts_ms, pool, n, pool_events[i : i + 500])
            for pool, pool_events in by_pool.items()
            for n, i in enumerate(range(0, len(pool_events), 500))
        ),
        key=lambda c: c[0],
    )
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()
    try:
        for _, pool, n, chunk in chunks:
            value = encode_columnar(
                chunk, batch_id=f"{prefix}-{pool}-{n}", source_host="h", pool=pool, sent_ms=origin
            )
            await raw.send(settings.requests_topic, value, key=pool.encode())
        await raw.flush()
    finally:
        await raw.stop()

    service = WorkerService(settings, worker_storage)
    try:
        await service.start()
        worker = service.worker
        assert worker is not None
        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=120,
            what="every offset committed",
        )
        # Deferred while records waited and the watermark was minutes behind the clock.
        assert worker.stats.cycles_deferred > 0, worker.stats
        queries = StorageQueries(get_client(worker_storage), worker_storage.database)
        got = await asyncio.to_thread(stored, queries, origin - 60_000, origin + SPAN_MS + 60_000)
        diff = differences(truth(events), got)
        assert diff == [], "\n".join([*diff, str(worker.stats)])
        # Caught up: the next cycle sees no lag, and the worker flushes at its usual pace again.
        await wait_until(
            lambda: _true(sum(worker.lag.values()) == 0), timeout_s=30, what="lag measured 0"
        )
        assert not worker.catching_up(settings.catch_up_behind_ms)
    finally:
        await service.stop()
