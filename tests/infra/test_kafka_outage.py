"""A dedicated broker the test stops, kills and restarts: clients fail fast, data survives."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaConsumer,
    AIOKafkaProducer,
)
from aiokafka.errors import KafkaError  # type: ignore[import-untyped, unused-ignore]

from tests.support.kafka_admin import create_topic
from tests.support.kafka_broker import KafkaBroker
from tests.support.ports import port_accepts

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

GUARD_S = 10.0


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, partition=0)
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        while len(values) < expected:
            batch = await consumer.getmany(timeout_ms=15000)
            if not batch:
                break
            values.extend(m.value for ms in batch.values() for m in ms)
    finally:
        await consumer.stop()
    return values


async def test_stop_makes_produce_fail_fast_and_restart_keeps_data(
    kafka_outage_broker: KafkaBroker,
) -> None:
    broker = kafka_outage_broker
    bootstrap, port = broker.bootstrap, broker.port
    await create_topic(bootstrap, "outage", partitions=3)
    await produce(bootstrap, "outage", [b"before-0", b"before-1"])

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=2000, retry_backoff_ms=100
    )
    await producer.start()
    try:
        await producer.send_and_wait("outage", b"while-up", partition=0)
        await broker.stop_async()
        assert not broker.running
        assert not port_accepts(port)

        # aiokafka gives up by itself (request_timeout_ms) well before the outer guard.
        started = time.monotonic()
        with pytest.raises(KafkaError):
            async with asyncio.timeout(GUARD_S):
                await producer.send_and_wait("outage", b"while-down", partition=0)
        assert time.monotonic() - started < GUARD_S
    finally:
        await producer.stop()

    await broker.start_async()
    assert broker.bootstrap == bootstrap  # same port after the restart
    await produce(bootstrap, "outage", [b"after"])
    values = await read_all(bootstrap, "outage", expected=4)
    assert values == [b"before-0", b"before-1", b"while-up", b"after"]


async def test_killed_broker_restarts_with_acknowledged_data(
    kafka_outage_broker: KafkaBroker,
) -> None:
    broker = kafka_outage_broker
    await create_topic(broker.bootstrap, "crash", partitions=1)
    await produce(broker.bootstrap, "crash", [f"acked-{i}".encode() for i in range(20)])
    old_pid = broker.pid

    broker.kill()
    assert not broker.running
    broker.restart()  # the blocking API also works inside a running event loop
    assert broker.pid not in (None, old_pid)
    assert broker.last_start_s is not None

    values = await read_all(broker.bootstrap, "crash", expected=20)
    assert values == [f"acked-{i}".encode() for i in range(20)]
