"""Compatibility smoke test: aiokafka (pinned) features beyond plain produce/consume on Kafka 4.x.

Idempotent and transactional producers (commit and abort) with a read_committed consumer: the
broker APIs an exactly-once pipeline would rely on, after Kafka 4 dropped old protocol versions.
"""

from __future__ import annotations

import uuid
from importlib.metadata import version

import pytest
from aiokafka import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaConsumer,
    AIOKafkaProducer,
)

from tests.support.kafka import TopicFactory

pytestmark = pytest.mark.kafka


async def read_values(bootstrap: str, topic: str, isolation: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        while len(values) < count:
            batch = await consumer.getmany(timeout_ms=10000)
            if not batch:
                break
            values.extend(m.value for ms in batch.values() for m in ms)
    finally:
        await consumer.stop()
    return values


async def test_transactions_commit_and_abort_with_read_committed(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    assert version("aiokafka") == "0.14.0"
    topic = await kafka_topic_factory(partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"pwm-compat-{uuid.uuid4().hex[:8]}",
        compression_type="lz4",
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
            await producer.send(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-3")
    finally:
        await producer.stop()

    committed = await read_values(kafka_bootstrap, topic, "read_committed", 3)
    assert committed == [b"committed-1", b"committed-2", b"committed-3"]
    everything = await read_values(kafka_bootstrap, topic, "read_uncommitted", 4)
    assert everything == [b"committed-1", b"committed-2", b"aborted", b"committed-3"]


async def test_idempotent_producer_round_trip(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, compression_type="zstd"
    )
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, f"v{i}".encode(), partition=i % 3)
        await producer.flush()
    finally:
        await producer.stop()
    values = await read_values(kafka_bootstrap, topic, "read_uncommitted", 30)
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(30))
