"""kcat (librdkafka, an independent client) and aiokafka interoperate through the broker."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaConsumer,
    AIOKafkaProducer,
)

from tests.support.kafka import TopicFactory

pytestmark = pytest.mark.kafka

KCAT_TIMEOUT_S = 60


def run_kcat(kcat: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(kcat), *args], input=stdin, capture_output=True, timeout=KCAT_TIMEOUT_S, check=False
    )


async def test_record_produced_by_kcat_is_consumed_by_aiokafka(
    kcat: Path, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=6)
    value = f"from-kcat-{uuid.uuid4().hex}"
    done = await asyncio.to_thread(
        run_kcat,
        kcat,
        *("-b", kafka_bootstrap, "-t", topic, "-P", "-p", "4", "-K", "|", "-z", "lz4"),
        stdin=f"pool-a|{value}\n".encode(),
    )
    assert done.returncode == 0, done.stderr.decode()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=15000)
    finally:
        await consumer.stop()
    records = [(tp.partition, m.key, m.value) for tp, ms in batch.items() for m in ms]
    assert records == [(4, b"pool-a", value.encode())]


async def test_record_produced_by_aiokafka_is_consumed_by_kcat(
    kcat: Path, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    value = f"from-aiokafka-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="zstd")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value.encode(), key=b"pool-b", partition=1)
    finally:
        await producer.stop()

    done = await asyncio.to_thread(
        run_kcat,
        kcat,
        *("-b", kafka_bootstrap, "-t", topic, "-C", "-p", "1", "-o", "beginning", "-e", "-q"),
        *("-f", "%p %k %s\\n"),
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [f"1 pool-b {value}"]
