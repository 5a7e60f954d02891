"""A flush stored in only some tables is repaired by the next owner, deterministically.

One flush is one insert into ``flush_ingest`` whose materialized views write ``agg_10s``,
``proxy_1m`` and ``source_offsets`` separately: an insert that fails (or a process that dies)
midway leaves some of them with the flush and others without it. Here the failure is real: a
ClickHouse constraint makes ``agg_10s`` refuse the insert after ``source_offsets`` took it, so
``source_offsets`` claims offsets whose sums ``agg_10s`` lacks. The first worker stops on the
refusal (poison: it must not commit); after the constraint is gone a second worker finds the
flush's intent in the committed offset metadata, rebuilds the flush from the same records and
writes it with the same deduplication token: ``agg_10s`` receives it, the tables that had it
ignore it, and every total is exact. (Seeking past ``source_offsets`` alone would lose it.)
"""

from __future__ import annotations

import asyncio
import time

import pytest
from worker_kit import (
    all_committed,
    differences,
    emit_range,
    fleet_scenario,
    kafka_producer,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from stream_app.simulator import FleetSimulator
from stream_app.storage.client import get_client
from stream_app.storage.engines import quote_identifier
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 2
SPAN_MS = 6_000


async def _true(value: bool) -> bool:
    return value


async def test_flush_half_stored_by_a_failed_insert_is_rebuilt_by_the_next_owner(
    kafka_bootstrap: str, worker_storage: StorageSettings
) -> None:
    prefix = unique_prefix("partial")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS)
    client = get_client(worker_storage)
    db = quote_identifier(worker_storage.database)
    queries = StorageQueries(client, worker_storage.database)

    first = WorkerService(settings, worker_storage)
    try:
        await first.start()
        agg_10s = f"{db}.agg_10s"
        await asyncio.to_thread(
            client.command, f"ALTER TABLE {agg_10s} ADD CONSTRAINT refuse CHECK requests > 1e15"
        )
        origin = time.time_ns() // 1_000_000 - SPAN_MS
        sim = FleetSimulator(fleet_scenario(600.0), seed=21, origin_ms=origin)
        events = list(sim.events_between(origin, origin + SPAN_MS))
        producer, _ = kafka_producer(kafka_bootstrap, prefix)
        try:
            assert await asyncio.to_thread(emit_range, producer, sim, origin, origin + SPAN_MS)
            assert await asyncio.to_thread(producer.flush, 30.0)
        finally:
            await asyncio.to_thread(producer.close, 10.0)
        # storage refuses the flush for good: the worker stops without committing it
        await asyncio.wait_for(first.wait(), 60)
        assert first.exit_code == 1
    finally:
        await first.stop()
    offsets = await asyncio.to_thread(queries.last_offsets, settings.requests_topic)
    assert offsets, "source_offsets should hold the half-stored flush"
    assert await asyncio.to_thread(stored, queries, origin - 60_000, origin + 60_000) == {}
    await asyncio.to_thread(client.command, f"ALTER TABLE {agg_10s} DROP CONSTRAINT refuse")

    second = WorkerService(settings, worker_storage)
    try:
        await second.start()
        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=90,
            what="the second worker to store and commit everything",
        )
        assert second.worker is not None
        assert second.worker.stats.rebuilt_flushes >= 1
    finally:
        await second.stop()
    got = await asyncio.to_thread(stored, queries, origin - 60_000, origin + 60_000)
    assert first.worker is not None
    assert second.worker is not None
    # Every event is on time only if each partition receives its pools' envelopes in about
    # event-time order (within grace_ms); the rebuild's late events count in the second worker.
    late = (
        f"late events: first worker {first.worker.stats.late_events}, second worker (its "
        f"rebuild included) {second.worker.stats.late_events}"
    )
    assert differences(truth(events), got) == [], late
    proxies = await asyncio.to_thread(queries.proxy_totals, origin - 60_000, origin + 60_000)
    with_proxy = sum(ev.proxy_id is not None for ev in events)
    assert sum(t.requests for t in proxies) == with_proxy, late
