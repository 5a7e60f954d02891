"""ClickHouse unavailable for a while under a live stream: the worker backs off and pauses
consumption (nothing committed, consumer lag grows, records taken in stay bounded) instead of
dropping or buffering without bound; after recovery every total is exact.

How the sink fails: during the outage each write goes through a real clickhouse-connect HTTP
client to a ClickHouse address where nothing listens, so the failure (connection refused) is
produced and translated (``SinkUnavailable``) by the real storage adapter, exactly as a
ClickHouse server going away would be. Outside the outage the writes go to the embedded
ClickHouse as usual.
"""

from __future__ import annotations

import asyncio

import pytest
from worker_kit import (
    all_committed,
    differences,
    end_offsets,
    fleet_scenario,
    group_offsets,
    kafka_producer,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from stream_app.core.contributions import Flush
from stream_app.simulator import FleetSimulator, RealtimeReport, run_realtime
from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink, RejectedRow
from stream_app.worker.service import WorkerService
from tests.support.ports import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 3


class OutageSink:
    """The real sink, or during an outage a ClickHouse server that cannot be reached."""

    def __init__(self, settings: StorageSettings) -> None:
        self._real = ClickHouseSink(get_client(settings), settings)
        self._unreachable = StorageSettings(
            dsn=f"http://127.0.0.1:{free_port()}", database=settings.database, insert_retries=0
        )
        self.outage = False
        self.refused = 0

    def write(self, flush: Flush) -> list[RejectedRow]:
        if self.outage:
            self.refused += 1
            sink = ClickHouseSink(get_client(self._unreachable), self._unreachable)
            sink.write(flush)  # not reached: connecting raises SinkUnavailable
            raise AssertionError("a ClickHouse client connected to a port nobody listens on")
        return self._real.write(flush)


async def _true(value: bool) -> bool:
    return value


async def test_sink_outage_pauses_consumption_and_totals_are_exact_after_recovery(
    kafka_bootstrap: str, worker_storage: StorageSettings
) -> None:
    prefix = unique_prefix("sink")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS)
    sink = OutageSink(worker_storage)
    service = WorkerService(settings, worker_storage, sink=sink)
    sim = FleetSimulator(fleet_scenario(500.0), seed=41)
    report = RealtimeReport()
    producer, _ = kafka_producer(kafka_bootstrap, prefix)
    stop = asyncio.Event()
    streaming: asyncio.Task[RealtimeReport] | None = None
    topic = settings.requests_topic
    try:
        await service.start()
        worker = service.worker
        assert worker is not None
        await wait_until(
            lambda: _true(len(worker.partitions) == PARTITIONS), timeout_s=60, what="assignment"
        )
        streaming = asyncio.create_task(
            run_realtime(sim, producer.emit, duration_s=22.0, stop=stop, report=report)
        )
        await wait_until(lambda: _true(worker.stats.flushes >= 3), timeout_s=60, what="flushes")

        sink.outage = True
        await wait_until(lambda: _true(worker.stats.paused), timeout_s=30, what="pause")
        committed_at_pause = await group_offsets(kafka_bootstrap, prefix)
        ends_at_pause = sum((await end_offsets(kafka_bootstrap, topic, PARTITIONS)).values())
        records_at_pause = worker.stats.records
        flushes_at_pause = worker.stats.flushes

        async def lag_grew() -> bool:
            ends = sum((await end_offsets(kafka_bootstrap, topic, PARTITIONS)).values())
            return ends - ends_at_pause >= 40 and worker.stats.sink_failures >= 3

        await wait_until(lag_grew, timeout_s=60, what="records piling up behind the pause")
        produced = sum((await end_offsets(kafka_bootstrap, topic, PARTITIONS)).values())
        taken = worker.stats.records - records_at_pause
        assert await group_offsets(kafka_bootstrap, prefix) == committed_at_pause
        assert worker.stats.paused
        assert worker.stats.flushes == flushes_at_pause
        # Consumption stopped: what the worker took in during the outage is bounded by what
        # was already fetched, not by what keeps arriving.
        assert taken < (produced - ends_at_pause) / 2, (taken, produced - ends_at_pause)
        assert sum(worker.lag.values()) > 0
        failures = worker.stats.sink_failures
        assert sink.refused >= failures

        sink.outage = False
        await wait_until(lambda: _true(not worker.stats.paused), timeout_s=30, what="resume")
        await streaming
        assert await asyncio.to_thread(producer.flush, 30.0)
        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, topic, PARTITIONS),
            timeout_s=90,
            what="everything stored and committed after the outage",
        )
    finally:
        stop.set()
        if streaming is not None:
            await asyncio.gather(streaming, return_exceptions=True)
        await asyncio.to_thread(producer.close, 10.0)
        await service.stop()
    queries = StorageQueries(get_client(worker_storage), worker_storage.database)
    start = report.virtual_start_ms + report.shift_ms
    got = await asyncio.to_thread(stored, queries, start - 60_000, start + 120_000)
    print("STATS", worker.stats)
    assert worker.stats.late_events == 0
    assert differences(truth(report.emitted_events(sim)), got) == []
