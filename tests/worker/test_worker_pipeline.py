"""The stream worker end to end on the real broker: envelopes, single events and poison in;
exact totals in ClickHouse, dead letters with reason and source offset, closed windows on the
windows topic, Prometheus metrics and health on the worker's HTTP port.

The worker runs in-process (a Faust app in the test's event loop) on the process's chDB
engine; the producer is the real ``MetricsProducer`` with its Kafka transport.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from worker_kit import (
    WINDOW_S,
    all_committed,
    differences,
    emit_range,
    fleet_scenario,
    kafka_producer,
    read_topic,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from schemas.wire import WireEvent, encode_event
from stream_app.simulator import FleetSimulator
from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService
from tests.support.ports import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SPAN_MS = 8_000
PARTITIONS = 3


def _http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the exposition")


async def test_records_in_exact_totals_dead_letters_windows_and_metrics_out(
    kafka_bootstrap: str, worker_storage: StorageSettings
) -> None:
    prefix = unique_prefix("pipeline")
    settings = worker_settings(
        kafka_bootstrap,
        prefix,
        partitions=PARTITIONS,
        metrics_port=free_port(),
        fetch_max_wait_ms=120,
    )
    service = WorkerService(settings, worker_storage)
    try:
        await service.start()
        worker = service.worker
        assert worker is not None
        assert service.metrics_server is not None
        await wait_until(
            lambda: _true(len(worker.partitions) == PARTITIONS), timeout_s=60, what="assignment"
        )
        # The fetcher in use holds fetches for the configured time, not Faust's fixed 1.5 s.
        assert service.app is not None
        fetcher = service.app.consumer._thread._consumer._fetcher
        assert fetcher._fetch_max_wait_ms == 120
        origin = time.time_ns() // 1_000_000 - SPAN_MS
        sim = FleetSimulator(fleet_scenario(800.0), seed=5, origin_ms=origin)
        envelope_events = list(sim.events_between(origin, origin + SPAN_MS))
        producer, _ = kafka_producer(kafka_bootstrap, prefix)
        try:
            emitted = await asyncio.to_thread(emit_range, producer, sim, origin, origin + SPAN_MS)
            assert await asyncio.to_thread(producer.flush, 30.0)
        finally:
            await asyncio.to_thread(producer.close, 10.0)
        assert emitted == len(envelope_events)

        # Third-party records: single events (keyed by pool) and poison. Each single is stamped
        # when it is sent, as a live producer would: an event time from before the envelopes'
        # end would be judged late (by design) whenever the wall-clock gap since the envelopes
        # exceeded idle timeout + grace, which a loaded machine's producer start-up can take.
        singles: list[WireEvent] = []
        raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await raw.start()
        poison: dict[tuple[int, int], str] = {}
        try:
            for i, ev in enumerate(envelope_events[-40:]):
                fields = {"event_id": f"single-{i}", "ts_ms": time.time_ns() // 1_000_000}
                single = ev.__class__(**{**_as_dict(ev), **fields})
                singles.append(single)
                await raw.send_and_wait(
                    settings.requests_topic, encode_event(single), key=single.pool.encode()
                )
            for value, why in (
                (b"{not json", "malformed JSON"),
                (json.dumps({**_as_dict(singles[0]), "latency_ms": -1}).encode(), "latency_ms"),
                (None, "empty record"),
            ):
                meta = await raw.send_and_wait(settings.requests_topic, value, key=b"poison")
                poison[(meta.partition, meta.offset)] = why
        finally:
            await raw.stop()

        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=90,
            what="every offset committed",
        )
        queries = StorageQueries(get_client(worker_storage), worker_storage.database)
        expected = truth([*envelope_events, *singles])
        got = await asyncio.to_thread(stored, queries, origin - 60_000, origin + 120_000)
        assert differences(expected, got) == []

        # Dead letters: the reason, the source partition/offset, the original key and payload.
        dead = await read_topic(kafka_bootstrap, settings.dlq_topic)
        entries = {
            (json.loads(m.value)["partition"], json.loads(m.value)["offset"]): m for m in dead
        }
        assert set(entries) == set(poison)
        for where, why in poison.items():
            record = entries[where]
            doc = json.loads(record.value)
            assert why in doc["reason"]
            assert doc["source"] == settings.requests_topic
            assert record.key == b"poison"
            assert dict(record.headers)["pwm-source-offset"] == str(where[1]).encode()
        assert worker.stats.dead_letters == 3

        # Closed windows on the windows topic: every pool x region window once, exact.
        proxy_windows = {
            (ev.pool, ev.region, ev.proxy_id, ev.ts_ms - ev.ts_ms % 10_000)
            for ev in [*envelope_events, *singles]
            if ev.proxy_id is not None
        }
        await wait_until(
            lambda: _true(
                worker.stats.windows_closed >= len(expected)
                and worker.stats.proxy_windows_closed >= len(proxy_windows)
            ),
            timeout_s=60,
            what="all windows closed",
        )
        published = await read_topic(kafka_bootstrap, settings.windows_topic)
        scope_windows: Counter[tuple[str, str, int]] = Counter()
        proxy_requests: Counter[tuple[str, str, int]] = Counter()
        for record in published:
            doc = json.loads(record.value)
            scope = doc["scope"]
            if scope["proxy_id"] is None:
                key = (scope["pool"], scope["region"], doc["window_start_ms"])
                scope_windows[key] += 1
                assert doc["requests"] == expected[key][0], key
                assert doc["window_s"] == WINDOW_S
            else:
                proxy_requests[(scope["pool"], scope["region"], doc["window_start_ms"])] += doc[
                    "requests"
                ]
        assert set(scope_windows) == set(expected)
        assert max(scope_windows.values()) == 1
        with_proxy = Counter(
            (ev.pool, ev.region, ev.ts_ms - ev.ts_ms % 10_000)
            for ev in [*envelope_events, *singles]
            if ev.proxy_id is not None
        )
        assert proxy_requests == with_proxy

        # Metrics and health on the worker's own port.
        base = f"http://127.0.0.1:{service.metrics_server.port}"
        status, text = await asyncio.to_thread(_http_get, base + "/metrics")
        assert status == 200
        assert _metric(text, "proxywhirl_worker_events_total") == worker.stats.events
        assert worker.stats.events == len(envelope_events) + len(singles)
        assert _metric(text, "proxywhirl_worker_assigned_partitions") == PARTITIONS
        assert 'proxywhirl_worker_dead_letters_total{reason="decode"} 2.0' in text
        assert _metric(text, "proxywhirl_worker_paused") == 0
        status, body = await asyncio.to_thread(_http_get, base + "/health")
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        assert worker.stats.stored_delay.count == worker.stats.events
    finally:
        await service.stop()


async def _true(value: bool) -> bool:
    return value


def _as_dict(ev: Any) -> dict[str, Any]:
    return {f: getattr(ev, f) for f in ev.__struct_fields__}
