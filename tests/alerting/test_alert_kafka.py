"""The ``<prefix>.alerts`` topic on a real Kafka broker."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from alert_test_events import event

from schemas.alerts import AlertEvent, AlertStatus
from stream_app.alerting.backoff import RetryPolicy
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.errors import DeliveryUnavailable
from stream_app.alerting.kafka_sink import KafkaAlertSink, alerts_topic
from stream_app.alerting.metrics import AlertingMetrics
from tests.support.kafka import TopicFactory
from tests.support.ports import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def read_topic(
    bootstrap: str, topic: str, partitions: int, timeout_s: float
) -> list[tuple[int, bytes, bytes]]:
    """Every record of ``topic`` as (partition, key, value), from the beginning to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[tuple[int, bytes, bytes]] = []
        async with asyncio.timeout(timeout_s):
            while True:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                    return records
                batch = await consumer.getmany(timeout_ms=200)
                for tp, messages in batch.items():
                    records.extend((tp.partition, m.key, m.value) for m in messages)
    finally:
        await consumer.stop()


async def test_alerts_topic_gets_exactly_the_events_keyed_by_fingerprint(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory, metrics: AlertingMetrics
) -> None:
    prefix = f"pwm-{uuid.uuid4().hex[:8]}"
    topic = await kafka_topic_factory(partitions=3, name=alerts_topic(prefix))
    sink = KafkaAlertSink(kafka_bootstrap, prefix)
    assert sink.topic == topic
    dispatcher = AlertDispatcher([sink], metrics)
    await dispatcher.start()
    sent: list[AlertEvent] = []
    for i in range(10):
        sent.append(event(f"pool{i}", seq=i))
    for i in range(10):
        sent.append(event(f"pool{i}", status=AlertStatus.RESOLVED, seq=i))
    for ev in sent:
        dispatcher.publish(ev)
    assert await dispatcher.drain(timeout_s=60)
    await dispatcher.close()

    records = await read_topic(kafka_bootstrap, topic, 3, timeout_s=30)
    assert len(records) == len(sent)
    got = [AlertEvent.model_validate_json(value) for _, _, value in records]
    assert sorted(e.model_dump_json() for e in got) == sorted(e.model_dump_json() for e in sent)
    for _, key, value in records:
        assert key.decode() == json.loads(value)["fingerprint"]
    # Both states of one alert are on one partition, firing before resolved.
    by_fingerprint: dict[str, list[tuple[int, str]]] = {}
    for partition, key, value in records:
        by_fingerprint.setdefault(key.decode(), []).append((partition, json.loads(value)["status"]))
    assert len(by_fingerprint) == 10
    for states in by_fingerprint.values():
        assert len({p for p, _ in states}) == 1
        assert [s for _, s in states] == ["firing", "resolved"]


async def test_unreachable_broker_is_a_retriable_failure(metrics: AlertingMetrics) -> None:
    sink = KafkaAlertSink(f"127.0.0.1:{free_port()}", "nowhere", request_timeout_ms=2000)
    await sink.start()  # not fatal
    with pytest.raises(DeliveryUnavailable):
        await sink.deliver(event())
    await sink.close()
    dispatcher = AlertDispatcher(
        [sink], metrics, retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01)
    )
    await dispatcher.start()
    dispatcher.publish(event())
    assert await dispatcher.drain(timeout_s=30)
    await dispatcher.close()
