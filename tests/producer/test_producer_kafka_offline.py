"""The Kafka transport with no broker reachable: everything is spooled, counted and exposed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from producer_sink import make_settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from producer import MetricsProducer, TransportRejected
from producer.kafka import KafkaTransport, KafkaTransportSettings
from producer.kafka_client import is_retriable
from tests.support.ports import free_port


def _unreachable(**overrides: object) -> KafkaTransportSettings:
    values: dict[str, object] = {
        "bootstrap_servers": f"127.0.0.1:{free_port()}",
        "request_timeout_ms": 500,
        "reconnect_initial_ms": 20,
        "reconnect_max_ms": 100,
    }
    values.update(overrides)
    return KafkaTransportSettings(**values)  # type: ignore[arg-type]


def test_without_a_broker_envelopes_are_spooled_and_exposed(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    transport = KafkaTransport(
        _unreachable(spool_path=tmp_path / "spool.sqlite3"), registry=registry
    )
    producer = MetricsProducer(
        make_settings(batch_max_events=10, batch_max_age_ms=3_600_000), transport
    )
    for i in range(30):
        assert producer.emit(pool="pool-a", region="eu", latency_ms=1.0, bytes_in=i)
    assert producer.flush(timeout_s=10.0)
    stats = transport.stats()
    assert (stats.accepted_batches, stats.spooled_batches, stats.spool_rows) == (3, 3, 3)
    assert stats.spooled_events == stats.spool_events == 30
    assert stats.sent_events == 0
    assert not stats.connected
    text = generate_latest(registry).decode()
    assert "pwm_producer_kafka_spooled_events_total 30.0" in text
    assert "pwm_producer_kafka_spool_rows 3.0" in text
    assert "pwm_producer_kafka_connected 0.0" in text
    assert "pwm_producer_kafka_send_latency_seconds_bucket" in text
    assert "pwm_producer_kafka" not in generate_latest(REGISTRY).decode()

    started = time.monotonic()
    producer.close(timeout_s=2.0)
    assert time.monotonic() - started < 15.0  # bounded even with the broker away
    assert transport.stats().dropped_closed_events == 0  # durable spool: kept for later
    with pytest.raises(TransportRejected):
        transport.send("pool-a", b"{}", 1)
    transport.close()  # idempotent


def test_a_memory_only_spool_counts_what_it_loses_on_close() -> None:
    transport = KafkaTransport(_unreachable())
    for seq in range(4):
        transport.send("pool-a", b'{"envelope": %d}' % seq, 5)
    transport.close(timeout_s=0.5)
    stats = transport.stats()
    assert stats.spooled_events == 20
    assert stats.dropped_closed_events == 20


def test_settings_topic_environment_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PWM_PRODUCER_KAFKA_TOPIC_PREFIX", "fleet-eu")
    monkeypatch.setenv("PWM_PRODUCER_KAFKA_COMPRESSION", "lz4")
    settings = KafkaTransportSettings()
    assert settings.topic == "fleet-eu.requests"
    assert settings.compression == "lz4"
    assert KafkaTransportSettings(topic_prefix="proxywhirl").topic == "proxywhirl.requests"
    with pytest.raises(ValueError, match="sasl_plain_username"):
        KafkaTransportSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512")
    with pytest.raises(ValueError, match="compression"):
        KafkaTransportSettings(compression="brotli")
    with pytest.raises(ValueError, match="topic_prefix"):
        KafkaTransportSettings(topic_prefix="bad prefix/..")


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        (KafkaConnectionError(), True),
        (KafkaTimeoutError(), True),
        (NodeNotReadyError(), True),
        (NotLeaderForPartitionError(), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (MessageSizeTooLargeError(), False),
        (TopicAuthorizationFailedError(), False),
        (ValueError("bug"), False),
    ],
)
def test_error_classification(error: BaseException, retriable: bool) -> None:
    assert is_retriable(error) is retriable


class _SlowMetadataProducer:
    """Stands in for aiokafka where its ``send()`` waits for topic metadata by polling: callers
    that start once the metadata is known append at once, earlier ones only at their next poll."""

    def __init__(self, ready_after_s: float, poll_s: float) -> None:
        self.ready_after_s = ready_after_s
        self.poll_s = poll_s
        self.ready = False
        self.asked_at: float | None = None
        self.appended: list[bytes] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if self.asked_at is None:
            self.asked_at = loop.time()
            loop.call_later(self.ready_after_s, setattr, self, "ready", True)
        # aiokafka polls for metadata like this, which is what lets a later caller overtake.
        while not self.ready:  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)
        self.appended.append(value)
        ack: asyncio.Future[None] = loop.create_future()
        ack.set_result(None)
        return ack


def test_envelopes_are_appended_in_hand_over_order_while_metadata_is_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _SlowMetadataProducer(ready_after_s=0.1, poll_s=0.5)
    monkeypatch.setattr("producer.kafka.new_aiokafka_producer", lambda settings: fake)
    transport = KafkaTransport(_unreachable())
    try:
        deadline = time.monotonic() + 10.0
        while not transport.stats().connected:
            assert time.monotonic() < deadline, "the fake producer never connected"
            time.sleep(0.005)
        transport.send("pool-a", b"envelope-1", 1)
        transport.send("pool-a", b"envelope-2", 1)
        while not fake.ready:  # the first two are still polling for metadata
            assert time.monotonic() < deadline, "metadata never became ready"
            time.sleep(0.001)
        transport.send("pool-a", b"envelope-3", 1)
        while transport.stats().sent_batches < 3:
            assert time.monotonic() < deadline, f"only {fake.appended} were sent"
            time.sleep(0.005)
        assert fake.appended == [b"envelope-1", b"envelope-2", b"envelope-3"]
        assert transport.stats().spooled_batches == 0
    finally:
        transport.close(timeout_s=2.0)
