"""Shared pieces of the worker tests: settings, a test fleet, ground truth, producing, waiting.

Ground truth is what the producer was given: the simulator is deterministic, so the events
emitted through the real producer are ``FleetSimulator.events_between`` of the same range.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped, unused-ignore]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped, unused-ignore]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped, unused-ignore]

from producer import MetricsProducer, ProducerSettings
from producer.kafka import KafkaTransport, KafkaTransportSettings
from schemas.wire import WireEvent
from stream_app.simulator import FleetSimulator, Scenario, scenario_from_data
from stream_app.storage.queries import StorageQueries
from stream_app.worker.settings import WorkerSettings

WINDOW_S = 2
FAST_PIPELINE: dict[str, int] = {
    "window_s": WINDOW_S,
    "grace_ms": 1_500,
    "proxy_window_s": 10,
    "flush_interval_ms": 300,
    "idle_timeout_ms": 1_500,
}
POOLS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
REGIONS = ("eu", "us")

Key = tuple[str, str, int]
"""(pool, region, window start ms)."""
Totals = dict[Key, tuple[int, int, int]]
"""requests, successes, bytes_in per window."""


def unique_prefix(name: str) -> str:
    return f"pwm-{name}-{uuid.uuid4().hex[:8]}"


def worker_settings(
    bootstrap: str, prefix: str, *, partitions: int = 4, **overrides: Any
) -> WorkerSettings:
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "app_id": prefix,
        "metrics_port": 0,
        "pipeline": FAST_PIPELINE,
        "topics": {"requests_partitions": partitions, "dlq_partitions": 1, "windows_partitions": 2},
        "broker_session_timeout_s": 10.0,
        "broker_heartbeat_interval_s": 1.0,
        "broker_request_timeout_s": 20.0,
        "broker_rebalance_timeout_s": 20.0,
        "revoke_timeout_s": 15.0,
        "broker_stall_ms": 2_500,
        "sink_backoff_initial_ms": 100,
        "sink_backoff_max_ms": 1_000,
        # Cycles at the test pipeline's pace even for old data (test_worker_catch_up turns
        # the catch-up cadence on).
        "catch_up_flush_interval_ms": 0,
    }
    values.update(overrides)
    return WorkerSettings(**values)


def fleet_scenario(rate_per_pool: float, pools: Iterable[str] = POOLS[:4]) -> Scenario:
    """A fleet without delivery disorder or incidents: every event is on time."""
    return scenario_from_data(
        {
            "name": "worker-test",
            "fleet": {
                "key": "worker-test-fleet-key",
                "regions": [{"name": r} for r in REGIONS],
                "pools": [
                    {"name": p, "rate_per_s": rate_per_pool, "proxies_per_region": 20}
                    for p in pools
                ],
                "hosts_per_region": 1,
            },
        },
        "worker-test",
    )


def truth(events: Iterable[WireEvent], window_s: int = WINDOW_S) -> Totals:
    window_ms = window_s * 1000
    requests: Counter[Key] = Counter()
    successes: Counter[Key] = Counter()
    bytes_in: Counter[Key] = Counter()
    for ev in events:
        key = (ev.pool, ev.region, ev.ts_ms - ev.ts_ms % window_ms)
        requests[key] += 1
        successes[key] += ev.outcome == "success"
        bytes_in[key] += ev.bytes_in
    return {k: (requests[k], successes[k], bytes_in[k]) for k in requests}


def stored(queries: StorageQueries, start_ms: int, end_ms: int) -> Totals:
    return {
        (t.pool, t.region, t.window_start_ms): (t.requests, t.successes, t.bytes_in)
        for t in queries.window_totals(start_ms, end_ms)
    }


def differences(expected: Totals, got: Totals) -> list[str]:
    """Readable differences (empty when equal)."""
    out = []
    for key in sorted(set(expected) | set(got)):
        if expected.get(key) != got.get(key):
            out.append(f"{key}: expected {expected.get(key)}, stored {got.get(key)}")
    return out


def kafka_producer(
    bootstrap: str, prefix: str, *, spool_path: Path | None = None, **kafka: Any
) -> tuple[MetricsProducer, KafkaTransport]:
    transport = KafkaTransport(
        KafkaTransportSettings(
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            spool_path=spool_path,
            reconnect_max_ms=1_000,
            **kafka,
        )
    )
    producer = MetricsProducer(
        ProducerSettings(
            source_host="worker-test",
            fleet_key="worker-test-producer-key",
            close_at_exit=False,
            max_buffer_events=1_000_000,
        ),
        transport,
    )
    return producer, transport


def emit_range(producer: MetricsProducer, sim: FleetSimulator, start_ms: int, end_ms: int) -> int:
    """Emit every event of ``[start_ms, end_ms)`` as fast as the producer takes them."""
    emitted = 0
    for params in sim.params_between(start_ms, end_ms):
        while not producer.emit(**params):  # buffer full: let the flush thread catch up
            time.sleep(0.005)
        emitted += 1
    return emitted


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def group_offsets(bootstrap: str, group: str) -> dict[int, int]:
    """Committed offsets of ``group`` per partition (any topic: tests use one per group)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in found.items() if om.offset >= 0}


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def all_committed(bootstrap: str, group: str, topic: str, partitions: int) -> bool:
    ends = await end_offsets(bootstrap, topic, partitions)
    committed = await group_offsets(bootstrap, group)
    return all(committed.get(p, 0) >= end for p, end in ends.items())


async def read_topic(bootstrap: str, topic: str, *, idle_ms: int = 2_000) -> list[Any]:
    """Every record of ``topic`` (until nothing new arrives for ``idle_ms``)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                return records
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()
