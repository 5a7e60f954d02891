"""The Kafka transport with no broker reachable: everything is spooled, counted and exposed."""

from __future__ import annotations

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
