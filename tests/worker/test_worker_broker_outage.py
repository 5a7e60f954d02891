"""The broker stopped and restarted under a live producer and worker: the producer's spool takes
over, the worker waits (it neither closes windows by the idle rule nor loses its place), and
after the restart every (pool, region, window) total is exact with no late events.

Uses the dedicated outage broker (the shared session broker is never stopped); the worker runs
in-process, the producer is the real ``MetricsProducer`` with its Kafka transport and an
on-disk spool.

Grace is 30 s here: envelopes the producer had in flight when the broker stopped are retried
inside aiokafka and land as soon as the broker is back, *before* older envelopes the transport
had already moved to its spool, so a pool's events arrive out of order by up to the producer's
request timeout plus the outage. Within the grace they are counted; beyond it they would be
late events (dead-lettered and counted as late, never silently dropped).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from worker_kit import (
    FAST_PIPELINE,
    all_committed,
    differences,
    fleet_scenario,
    kafka_producer,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from stream_app.simulator import FleetSimulator, RealtimeReport, run_realtime
from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService
from tests.support.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 3


async def _true(value: bool) -> bool:
    return value


async def test_broker_restart_under_producer_and_worker_totals_exact(
    kafka_outage_broker: KafkaBroker, worker_storage: StorageSettings, tmp_path: Path
) -> None:
    broker = kafka_outage_broker
    bootstrap = broker.bootstrap
    prefix = unique_prefix("outage")
    settings = worker_settings(
        bootstrap, prefix, partitions=PARTITIONS, pipeline={**FAST_PIPELINE, "grace_ms": 30_000}
    )
    service = WorkerService(settings, worker_storage)
    sim = FleetSimulator(fleet_scenario(400.0), seed=51)
    report = RealtimeReport()
    producer, transport = kafka_producer(bootstrap, prefix, spool_path=tmp_path / "spool.db")
    stop = asyncio.Event()
    streaming: asyncio.Task[RealtimeReport] | None = None
    try:
        await service.start()
        worker = service.worker
        assert worker is not None
        await wait_until(
            lambda: _true(len(worker.partitions) == PARTITIONS), timeout_s=60, what="assignment"
        )
        streaming = asyncio.create_task(
            run_realtime(sim, producer.emit, duration_s=30.0, stop=stop, report=report)
        )
        await wait_until(lambda: _true(worker.stats.flushes >= 3), timeout_s=60, what="flushes")

        await broker.stop_async()
        await wait_until(
            lambda: _true(transport.stats().spool_rows > 0 and not worker.stats.broker_reachable),
            timeout_s=60,
            what="the producer spooling and the worker noticing the outage",
        )
        stored_during_outage = worker.stats.flushes
        await broker.start_async()

        await streaming
        assert report.finished
        assert await asyncio.to_thread(producer.flush, 30.0)
        await wait_until(
            lambda: _true(transport.stats().spool_rows == 0),
            timeout_s=90,
            what="the spool replayed",
        )
        await wait_until(
            lambda: all_committed(bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=120,
            what="everything stored and committed after the restart",
        )
        assert worker.stats.flushes > stored_during_outage
    finally:
        stop.set()
        if streaming is not None:
            await asyncio.gather(streaming, return_exceptions=True)
        await asyncio.to_thread(producer.close, 10.0)
        await service.stop()
    shipped = transport.stats()
    assert shipped.spooled_events > 0
    assert shipped.sent_events == shipped.accepted_events == report.emitted
    queries = StorageQueries(get_client(worker_storage), worker_storage.database)
    start = report.virtual_start_ms + report.shift_ms
    got = await asyncio.to_thread(stored, queries, start - 60_000, start + 120_000)
    assert worker.stats.late_events == 0
    assert differences(truth(report.emitted_events(sim)), got) == []
