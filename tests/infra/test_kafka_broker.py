"""The session Kafka broker: topics, compressed produce/consume round trips, group commits."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped, unused-ignore]
from aiokafka.errors import UnknownTopicOrPartitionError  # type: ignore[import-untyped, unused-ignore]

from tests.support.kafka import KafkaEndpoint, TopicFactory
from tests.support.kafka_admin import TopicError, create_topic

pytestmark = pytest.mark.kafka

RECORDS_PER_PARTITION = 50


async def consume_exactly(
    consumer: AIOKafkaConsumer, count: int, timeout_ms: int = 15000
) -> list[tuple[int, bytes | None, bytes]]:
    """(partition, key, value) of the next ``count`` records; fails if fewer arrive in time."""
    got: list[tuple[int, bytes | None, bytes]] = []
    while len(got) < count:
        batch = await consumer.getmany(timeout_ms=timeout_ms)
        if not batch:
            break
        for tp, messages in batch.items():
            got.extend((tp.partition, m.key, m.value) for m in messages)
    assert len(got) == count, f"expected {count} records, got {len(got)}"
    return got


async def test_session_broker_answers_with_one_node(kafka_broker: KafkaEndpoint) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert [b["node_id"] for b in cluster["brokers"]] == [cluster["controller_id"]]
    if kafka_broker.broker is not None:
        assert kafka_broker.broker.running
        assert kafka_broker.bootstrap == f"127.0.0.1:{kafka_broker.broker.port}"
        assert cluster["cluster_id"] == kafka_broker.broker.cluster_id


async def test_topic_with_six_partitions_has_a_leader_for_each(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=6)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0
    assert sorted(p["partition"] for p in described["partitions"]) == list(range(6))
    assert all(p["leader"] >= 0 for p in described["partitions"])


async def test_creating_an_existing_topic_is_an_error_unless_exist_ok(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    with pytest.raises(TopicError, match="TopicAlreadyExists"):
        await create_topic(kafka_bootstrap, topic, partitions=2)
    await create_topic(kafka_bootstrap, topic, partitions=2, exist_ok=True)


async def test_auto_topic_creation_is_off(kafka_broker: KafkaEndpoint) -> None:
    if kafka_broker.origin != "maven":
        pytest.skip("the broker's configuration is not ours")
    missing = f"never-created-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([missing])
    finally:
        await admin.close()
    assert described["error_code"] == UnknownTopicOrPartitionError.errno


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
async def test_compressed_round_trip_over_six_partitions(
    codec: str, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=6)
    sent: set[tuple[int, bytes, bytes]] = set()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, compression_type=codec, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        for partition in range(6):
            for i in range(RECORDS_PER_PARTITION):
                key = f"pool-{partition}".encode()
                value = f"{codec}:{partition}:{i}:".encode() + b"x" * 200  # compressible
                await producer.send(topic, value, key=key, partition=partition)
                sent.add((partition, key, value))
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        got = await consume_exactly(consumer, len(sent))
    finally:
        await consumer.stop()
    assert set(got) == sent
    assert len(got) == len(set(got))  # nothing twice


async def test_consumer_group_commit_is_resumed_by_the_next_member(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=3)
    group = f"group-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, f"first-{i}".encode(), partition=i % 3)
        await producer.flush()

        first = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await first.start()
        try:
            seen = await consume_exactly(first, 30)
            await first.commit()
            committed = {p: await first.committed(TopicPartition(topic, p)) for p in range(3)}
        finally:
            await first.stop()
        assert {v for _, _, v in seen} == {f"first-{i}".encode() for i in range(30)}
        assert committed == {0: 10, 1: 10, 2: 10}

        for i in range(6):
            await producer.send(topic, f"second-{i}".encode(), partition=i % 3)
        await producer.flush()
    finally:
        await producer.stop()

    second = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await second.start()
    try:
        resumed = await consume_exactly(second, 6)
    finally:
        await second.stop()
    assert sorted(v for _, _, v in resumed) == sorted(f"second-{i}".encode() for i in range(6))
