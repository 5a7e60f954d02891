"""Compatibility smoke test: faust-streaming (pinned) against the Kafka the fixtures run (4.x).

A tiny Faust app, started programmatically with its web server off: an agent consumes a
pre-created topic (records sent by a plain aiokafka producer) and counts per key in a table, so
Faust also creates its changelog topic and produces to it with lz4.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from importlib.metadata import version

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped, unused-ignore]

from tests.support.kafka import TopicFactory

pytestmark = pytest.mark.kafka

RECORDS = 40
KEYS = (b"pool-a", b"pool-b", b"pool-c", b"pool-d")
CONSUME_TIMEOUT_S = 60.0


async def test_faust_agent_consumes_and_its_table_changelog_works(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    assert version("faust-streaming") == "0.15.3"
    source = await kafka_topic_factory(partitions=2)
    app_id = f"pwm-compat-{uuid.uuid4().hex[:8]}"
    app = faust.App(
        app_id,
        broker=f"kafka://{kafka_bootstrap}",
        web_enabled=False,
        store="memory://",
        topic_replication_factor=1,
        topic_partitions=2,
        producer_compression_type="lz4",
        broker_commit_every=1,
    )
    topic = app.topic(source, key_serializer="raw", value_serializer="raw")
    counts = app.Table("counts", default=int, partitions=2)  # JSON keys and values
    seen: list[bytes] = []
    all_seen = asyncio.Event()

    @app.agent(topic)
    async def count(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            seen.append(event.value)
            counts[event.key.decode()] += 1
            if len(seen) == RECORDS:
                all_seen.set()
            yield None

    await app.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="zstd")
        await producer.start()
        try:
            for i in range(RECORDS):
                await producer.send(source, f"event-{i}".encode(), key=KEYS[i % len(KEYS)])
            await producer.flush()
        finally:
            await producer.stop()
        async with asyncio.timeout(CONSUME_TIMEOUT_S):
            await all_seen.wait()
        assert sorted(seen) == sorted(f"event-{i}".encode() for i in range(RECORDS))
        assert dict(counts.items()) == {key.decode(): RECORDS // len(KEYS) for key in KEYS}
    finally:
        await app.stop()

    changelog = f"{app_id}-counts-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([changelog])
    finally:
        await admin.close()
    assert described["error_code"] == 0
    assert len(described["partitions"]) == 2

    reader = AIOKafkaConsumer(
        changelog, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        last: dict[str, int] = {}  # the latest changelog value per key, as a compacted read
        want = {key.decode(): RECORDS // len(KEYS) for key in KEYS}
        async with asyncio.timeout(CONSUME_TIMEOUT_S):
            while last != want:
                batch = await reader.getmany(timeout_ms=1000)
                for messages in batch.values():
                    last.update((json.loads(m.key), json.loads(m.value)) for m in messages)
    finally:
        await reader.stop()
    assert last == want
