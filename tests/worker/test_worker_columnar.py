"""Columnar envelopes (schema v2) through a real worker: Kafka -> windows -> storage.

v2 envelopes of simulated traffic (numeric columns packed in some, JSON arrays in others), mixed
with v1 envelopes of the same fleet, a repeated v2 envelope (the producer's resend after a lost
acknowledgement) and a v2 envelope whose index is outside its dictionary: storage must hold
exactly the totals of the events, counted once, and the broken envelope must be dead-lettered
with the field and the reason.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from worker_kit import (
    all_committed,
    differences,
    fleet_scenario,
    read_topic,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from producer.columnar import encode_columnar
from schemas.wire import WireBatch, WireEvent, encode_batch
from stream_app.simulator import FleetSimulator
from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SPAN_MS = 6_000
PARTITIONS = 2


async def _true(value: bool) -> bool:
    return value


async def test_v2_envelopes_store_exact_totals_once_and_bad_ones_are_dead_lettered(
    kafka_bootstrap: str, worker_storage: StorageSettings
) -> None:
    prefix = unique_prefix("columnar")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS)
    service = WorkerService(settings, worker_storage)
    try:
        await service.start()
        worker = service.worker
        assert worker is not None
        await wait_until(
            lambda: _true(len(worker.partitions) == PARTITIONS), timeout_s=60, what="assignment"
        )
        origin = time.time_ns() // 1_000_000 - SPAN_MS
        sim = FleetSimulator(fleet_scenario(400.0), seed=7, origin_ms=origin)
        events = list(sim.events_between(origin, origin + SPAN_MS))
        by_pool: dict[str, list[WireEvent]] = {}
        for ev in events:
            by_pool.setdefault(ev.pool, []).append(ev)
        # Envelopes of 200 events per pool, sent in event-time order (pools share partitions:
        # a pool's whole span sent before another's would make the other's events late).
        chunks = sorted(
            (
                (pool_events[i].ts_ms, pool, n, pool_events[i : i + 200])
                for pool, pool_events in by_pool.items()
                for n, i in enumerate(range(0, len(pool_events), 200))
            ),
            key=lambda c: c[0],
        )
        records: list[tuple[str, bytes]] = []
        for _, pool, n, chunk in chunks:
            batch_id = f"{prefix}-{pool}-{n}"
            if n % 3 == 2:  # a v1 envelope among the v2 ones
                batch = WireBatch(
                    batch_id=batch_id, source_host="h", pool=pool, sent_ms=origin, events=chunk
                )
                records.append((pool, encode_batch(batch)))
                continue
            v2 = encode_columnar(  # numeric columns packed, or as arrays in every other one
                chunk,
                batch_id=batch_id,
                source_host="h",
                pool=pool,
                sent_ms=origin,
                packed=n % 2 == 1,
            )
            records.append((pool, v2))
            if n == 0:
                records.append((pool, v2))  # resent: must not count twice
        broken = json.loads(records[0][1])
        broken["batch_id"] = "broken"
        broken["columns"]["region"][0] = 99
        raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await raw.start()
        try:
            for pool, value in records:
                await raw.send(settings.requests_topic, value, key=pool.encode())
            meta = await raw.send_and_wait(
                settings.requests_topic, json.dumps(broken).encode(), key=b"poison"
            )
        finally:
            await raw.stop()

        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=90,
            what="every offset committed",
        )
        queries = StorageQueries(get_client(worker_storage), worker_storage.database)
        got = await asyncio.to_thread(stored, queries, origin - 60_000, origin + 120_000)
        diff = differences(truth(events), got)
        assert diff == [], "\n".join([*diff, str(worker.stats), str(sorted(got))])
        assert worker.stats.events == len(events)
        assert worker.stats.repeated_batches == len(by_pool)

        dead = await read_topic(kafka_bootstrap, settings.dlq_topic)
        assert len(dead) == 1
        doc = json.loads(dead[0].value)
        assert (doc["partition"], doc["offset"]) == (meta.partition, meta.offset)
        assert "index 99 is not in `$.dictionaries.region`" in doc["reason"]
        assert "$.columns.region[0]" in doc["reason"]
    finally:
        await service.stop()
