"""Two workers on a 6-partition topic, one joining late and one leaving, under a live stream:
every (pool, region, window) total in ClickHouse is exact, and the latest published record of
every window is complete although windows changed hands while open.

Choice of setup: both workers run in this process as two Faust apps (two consumer-group
members with their own consumer threads) writing to the same embedded ClickHouse. That is the
deployment's shape (N workers, one ClickHouse): stored offsets, open windows and flush intents
one worker left are what the other reads when it takes partitions over. Separate processes
would each need their own chDB path (one engine per path), which would hide exactly that
handover; the kill -9 test covers a worker process dying.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from worker_kit import (
    WINDOW_S,
    all_committed,
    differences,
    fleet_scenario,
    kafka_producer,
    read_topic,
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

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 6
POOLS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


async def _true(value: bool) -> bool:
    return value


async def test_worker_joins_late_and_another_leaves_totals_stay_exact(
    kafka_bootstrap: str, worker_storage: StorageSettings
) -> None:
    prefix = unique_prefix("rebalance")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS)
    first = WorkerService(settings, worker_storage)
    second = WorkerService(settings, worker_storage)
    sim = FleetSimulator(fleet_scenario(400.0, POOLS), seed=31)
    report = RealtimeReport()
    producer, _ = kafka_producer(kafka_bootstrap, prefix)
    stop = asyncio.Event()
    streaming: asyncio.Task[RealtimeReport] | None = None
    try:
        await first.start()
        a, b = first.worker, None
        assert a is not None
        await wait_until(
            lambda: _true(len(a.partitions) == PARTITIONS), timeout_s=60, what="first worker ready"
        )
        streaming = asyncio.create_task(
            run_realtime(sim, producer.emit, duration_s=24.0, stop=stop, report=report)
        )
        await wait_until(lambda: _true(a.stats.commits >= 4), timeout_s=60, what="first flushes")
        await second.start()  # joins late: the partitions are split
        b = second.worker
        assert b is not None
        await wait_until(
            lambda: _true(0 < len(b.partitions) < PARTITIONS and b.stats.commits >= 4),
            timeout_s=90,
            what="second worker holding and storing part of the partitions",
        )
        assert 0 < len(a.partitions) < PARTITIONS
        events_before_leaving = b.stats.events
        await first.stop()  # leaves: its partitions move to the second worker
        await wait_until(
            lambda: _true(
                len(b.partitions) == PARTITIONS and b.stats.events > events_before_leaving
            ),
            timeout_s=90,
            what="second worker holding every partition",
        )
        await streaming
        assert report.finished
        assert await asyncio.to_thread(producer.flush, 30.0)
        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=90,
            what="everything stored and committed",
        )
        expected = truth(report.emitted_events(sim))
        latest: dict[tuple[str, str, int], int] = {}

        async def windows_complete() -> bool:
            for record in await read_topic(kafka_bootstrap, settings.windows_topic, idle_ms=500):
                window = json.loads(record.value)
                scope = window["scope"]
                if scope["proxy_id"] is None:
                    latest[(scope["pool"], scope["region"], window["window_start_ms"])] = window[
                        "requests"
                    ]
            return all(key in latest for key in expected)

        await wait_until(windows_complete, timeout_s=60, what="every window published")
    finally:
        stop.set()
        if streaming is not None:
            await asyncio.gather(streaming, return_exceptions=True)
        await asyncio.to_thread(producer.close, 10.0)
        await first.stop()
        await second.stop()

    queries = StorageQueries(get_client(worker_storage), worker_storage.database)
    start = report.virtual_start_ms + report.shift_ms
    got = await asyncio.to_thread(stored, queries, start - 60_000, start + 120_000)
    assert differences(expected, got) == []
    assert a.stats.events > 0
    assert b.stats.events > 0
    assert a.stats.takeovers >= 2  # its own start, then the split
    assert b.stats.takeovers >= 2  # the split, then everything
    assert {k: latest[k] for k in expected} == {k: v[0] for k, v in expected.items()}
    assert all(window_start % (WINDOW_S * 1000) == 0 for _, _, window_start in expected)
