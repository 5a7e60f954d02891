"""The Kafka transport against a real broker: delivery, keys, codecs, outages, spool, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from producer_kafka_tools import Consumed, codecs_on_disk, read_topic
from producer_sink import make_settings

from producer import MetricsProducer
from producer.kafka import KafkaTransport, KafkaTransportSettings
from tests.support.kafka import KafkaEndpoint, TopicFactory
from tests.support.kafka_broker import KafkaBroker
from tests.support.ports import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _kafka_settings(bootstrap: str, prefix: str, **overrides: object) -> KafkaTransportSettings:
    values: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "request_timeout_ms": 2000,
        "reconnect_initial_ms": 50,
        "reconnect_max_ms": 500,
        "linger_ms": 2,
        "close_timeout_s": 10.0,
    }
    values.update(overrides)
    return KafkaTransportSettings(**values)  # type: ignore[arg-type]


async def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def _emit_range(producer: MetricsProducer, markers: range, pools: int) -> None:
    for m in markers:
        assert producer.emit(
            pool=f"pool-{m % pools}", region="eu", latency_ms=float(m % 500), bytes_in=m
        )


def _markers(records: list[Consumed]) -> list[int]:
    return [ev.bytes_in for r in records for ev in r.batch.events]


def _assert_pool_order(records: list[Consumed]) -> None:
    """Each pool lives in one partition, and its envelopes arrive in hand-over order."""
    partition_of: dict[str, int] = {}
    last_seq: dict[str, int] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        pool = r.batch.pool
        assert r.key == pool.encode()
        assert partition_of.setdefault(pool, r.partition) == r.partition
        seq = int(r.batch.batch_id.rsplit("-", 1)[1])
        assert seq > last_seq.get(pool, -1), f"{pool}: batch {seq} after {last_seq[pool]}"
        last_seq[pool] = seq
        markers = [ev.bytes_in for ev in r.batch.events]
        assert markers == sorted(markers)


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip", "none"])
async def test_envelopes_arrive_keyed_by_pool_and_compressed(
    codec: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic_factory: TopicFactory,
) -> None:
    prefix = _prefix()
    topic = await kafka_topic_factory(3, name=f"{prefix}.requests")
    transport = KafkaTransport(_kafka_settings(kafka_broker.bootstrap, prefix, compression=codec))
    producer = MetricsProducer(make_settings(batch_max_events=50, batch_max_age_ms=20), transport)
    # Until the first connection succeeds envelopes go to the spool; test the live path.
    await _wait(lambda: transport.stats().connected, 30, "the connection")
    _emit_range(producer, range(600), pools=4)
    assert await producer.aflush(timeout_s=30.0)
    await _wait(lambda: transport.stats().sent_events == 600, 60, "600 acknowledged events")
    await producer.aclose()

    records = await read_topic(kafka_broker.bootstrap, topic, 3)
    assert sorted(_markers(records)) == list(range(600))
    assert len({ev.event_id for r in records for ev in r.batch.events}) == 600
    stats = transport.stats()
    assert len(records) == stats.sent_batches == stats.accepted_batches
    assert stats.spooled_batches == stats.dropped_rejected_events == 0
    _assert_pool_order(records)
    assert len({r.partition for r in records}) > 1  # 4 pools spread over 3 partitions
    if kafka_broker.broker is not None:
        assert codecs_on_disk(kafka_broker.broker.data_dir, topic) == {codec}


async def test_outage_spools_then_replays_in_order_nothing_lost(
    kafka_outage_broker: KafkaBroker,
    kafka_topic_factory: TopicFactory,
    tmp_path: Path,
) -> None:
    broker = kafka_outage_broker
    prefix = _prefix()
    topic = await kafka_topic_factory(3, name=f"{prefix}.requests", bootstrap=broker.bootstrap)
    transport = KafkaTransport(
        _kafka_settings(broker.bootstrap, prefix, spool_path=tmp_path / "spool.sqlite3")
    )
    producer = MetricsProducer(make_settings(batch_max_events=20, batch_max_age_ms=20), transport)
    await _wait(lambda: transport.stats().connected, 30, "the connection")

    _emit_range(producer, range(100), pools=3)
    assert await producer.aflush(timeout_s=30.0)
    await _wait(lambda: transport.stats().sent_events == 100, 60, "the first 100 events")

    await broker.stop_async()
    _emit_range(producer, range(100, 400), pools=3)
    assert await producer.aflush(timeout_s=30.0)  # handed over: the spool holds them
    await _wait(lambda: transport.stats().spool_events == 300, 60, "300 spooled events")
    during = transport.stats()
    assert during.sent_events == 100
    assert during.spool_rows >= 15
    assert not during.connected

    await broker.start_async()
    await _wait(
        lambda: transport.stats().sent_events == 400 and transport.stats().spool_rows == 0,
        90,
        "the replay",
    )
    await producer.aclose()
    stats = transport.stats()
    assert stats.replayed_events == 300
    assert stats.dropped_spool_full_events == stats.dropped_rejected_events == 0
    assert producer.stats().dropped_full == producer.stats().dropped_send == 0

    records = await read_topic(broker.bootstrap, topic, 3)
    markers = _markers(records)
    assert len(markers) == 400
    assert sorted(markers) == list(range(400))
    _assert_pool_order(records)


async def test_spool_bound_drops_the_oldest_and_the_rest_survive_a_restart(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    prefix = _prefix()
    spool_path = tmp_path / "spool.sqlite3"
    down = f"127.0.0.1:{free_port()}"  # nothing listens here: the broker is "unreachable"
    first = KafkaTransport(_kafka_settings(down, prefix, spool_path=spool_path, spool_max_rows=5))
    producer = MetricsProducer(
        make_settings(batch_max_events=10, batch_max_age_ms=3_600_000), first
    )
    _emit_range(producer, range(120), pools=1)
    assert await producer.aflush(timeout_s=10.0)
    stats = first.stats()
    assert stats.spooled_batches == 12
    assert (stats.spool_rows, stats.spool_events) == (5, 50)
    assert (stats.dropped_spool_full_batches, stats.dropped_spool_full_events) == (7, 70)
    assert stats.sent_events == 0
    await producer.aclose()  # a clean stop: the spool stays on disk

    topic = await kafka_topic_factory(2, name=f"{prefix}.requests")
    second = KafkaTransport(_kafka_settings(kafka_bootstrap, prefix, spool_path=spool_path))
    await _wait(lambda: second.stats().sent_events == 50, 60, "the replay of 50 events")
    await asyncio.to_thread(second.close)
    assert second.stats().replayed_batches == 5
    records = await read_topic(kafka_bootstrap, topic, 2)
    assert _markers(records) == list(range(70, 120))


_CRASHING_PRODUCER = """
import sys, time
from producer import MetricsProducer, ProducerSettings
from producer.kafka import KafkaTransport, KafkaTransportSettings

bootstrap, prefix, spool = sys.argv[1:4]
transport = KafkaTransport(KafkaTransportSettings(
    bootstrap_servers=bootstrap, topic_prefix=prefix, spool_path=spool,
    request_timeout_ms=1000, reconnect_initial_ms=50))
producer = MetricsProducer(ProducerSettings(
    source_host="crash-host", fleet_key="crash-test-fleet-key", batch_max_events=25,
    batch_max_age_ms=3600000, close_at_exit=False), transport)
for m in range(200):
    assert producer.emit(pool="pool-%d" % (m % 2), region="eu", latency_ms=1.0, bytes_in=m)
assert producer.flush(timeout_s=30)
deadline = time.monotonic() + 60
while transport.stats().spool_events < 200 and time.monotonic() < deadline:
    time.sleep(0.01)
print("spooled", transport.stats().spool_events, flush=True)
sys.stdin.read()  # wait to be killed
"""


async def test_spool_survives_a_killed_producer(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    prefix = _prefix()
    spool_path = tmp_path / "spool.sqlite3"
    down = f"127.0.0.1:{free_port()}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_PRODUCER,
        down,
        prefix,
        str(spool_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 90)
        assert line.decode().split() == ["spooled", "200"]
    finally:
        os.kill(child.pid, signal.SIGKILL)  # between the spool write and the send
        await asyncio.wait_for(child.wait(), 30)
    assert child.returncode == -signal.SIGKILL

    topic = await kafka_topic_factory(2, name=f"{prefix}.requests")
    transport = KafkaTransport(_kafka_settings(kafka_bootstrap, prefix, spool_path=spool_path))
    await _wait(lambda: transport.stats().sent_events == 200, 60, "the replay of 200 events")
    await asyncio.to_thread(transport.close)
    records = await read_topic(kafka_bootstrap, topic, 2)
    assert sorted(_markers(records)) == list(range(200))
    assert len(records) == 8
    _assert_pool_order(records)
    assert {r.batch.source_host for r in records} == {"crash-host"}


async def test_an_envelope_the_broker_refuses_is_dropped_and_counted(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    prefix = _prefix()
    topic = await kafka_topic_factory(
        1, name=f"{prefix}.requests", config={"max.message.bytes": "4096"}
    )
    transport = KafkaTransport(
        _kafka_settings(kafka_bootstrap, prefix, compression="none", linger_ms=0)
    )
    producer = MetricsProducer(
        make_settings(batch_max_events=100, batch_max_age_ms=3_600_000), transport
    )
    await _wait(lambda: transport.stats().connected, 30, "the connection")
    _emit_range(producer, range(100), pools=1)  # one envelope of ~30 kB: over the topic limit
    assert await producer.aflush(timeout_s=10.0)
    await _wait(lambda: transport.stats().dropped_rejected_events == 100, 30, "the refusal")
    _emit_range(producer, range(100, 103), pools=1)  # a small one still goes through
    assert await producer.aflush(timeout_s=10.0)
    await _wait(lambda: transport.stats().sent_events == 3, 30, "the small envelope")
    await producer.aclose()
    stats = transport.stats()
    assert stats.send_errors_poison == 1
    assert stats.spooled_batches == 0
    assert _markers(await read_topic(kafka_bootstrap, topic, 1)) == [100, 101, 102]
