"""Background flush by size and age, flush()/close(), and transport failures."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest
from producer_sink import FLEET_KEY, ScriptedTransport, Sink, make_settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from producer import (
    InProcessTransport,
    MetricsProducer,
    TransportRejected,
    TransportUnavailable,
)


def _emit(producer: MetricsProducer, marker: int, pool: str = "pool-a") -> bool:
    return producer.emit(pool=pool, region="eu", latency_ms=1.0, bytes_in=marker)


def test_flush_by_size_sends_full_batches_only() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_events=50, batch_max_age_ms=3_600_000),
        InProcessTransport(sink.deliver),
    )
    for i in range(120):
        assert _emit(producer, i)
    assert sink.wait_for(lambda: len(sink.batches) >= 2)
    assert [len(b.events) for b in sink.batches] == [50, 50]
    assert producer.stats().buffered == 20  # a partial batch waits for its age
    producer.close()
    assert [len(b.events) for b in sink.batches] == [50, 50, 20]
    assert [ev.bytes_in for ev in sink.events] == list(range(120))


def test_flush_by_age_sends_a_partial_batch() -> None:
    sink = Sink()
    age_ms = 150
    producer = MetricsProducer(
        make_settings(batch_max_events=10_000, batch_max_age_ms=age_ms),
        InProcessTransport(sink.deliver),
    )
    started = time.monotonic()
    for i in range(7):
        assert _emit(producer, i)
    assert sink.wait_for_events(7)
    elapsed_s = time.monotonic() - started
    assert elapsed_s >= age_ms / 1000.0
    assert [len(b.events) for b in sink.batches] == [7]
    # The thread went idle; a later event starts a new age clock and is sent too.
    assert _emit(producer, 99)
    assert sink.wait_for_events(8)
    producer.close()


def test_one_envelope_per_pool() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_age_ms=3_600_000), InProcessTransport(sink.deliver)
    )
    for i in range(30):
        assert _emit(producer, i, pool=f"pool-{i % 3}")
    assert producer.flush(timeout_s=5.0)
    assert sorted(sink.payload_pools) == ["pool-0", "pool-1", "pool-2"]
    for batch in sink.batches:
        assert {ev.pool for ev in batch.events} == {batch.pool}
        assert len(batch.events) == 10
    producer.close()


def test_close_flushes_everything_and_is_idempotent() -> None:
    sink = Sink()
    transport = ScriptedTransport(sink, failures=[])
    producer = MetricsProducer(
        make_settings(batch_max_events=10_000, batch_max_age_ms=3_600_000), transport
    )
    for i in range(1234):
        assert _emit(producer, i, pool=f"pool-{i % 5}")
    producer.close()
    producer.close()
    assert len(sink.events) == 1234
    assert transport.closed == 1
    assert producer.stats().buffered == 0


async def test_async_context_close() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_age_ms=3_600_000), InProcessTransport(sink.deliver)
    )
    assert _emit(producer, 5)
    await producer.aclose()
    assert [ev.bytes_in for ev in sink.events] == [5]


def test_retriable_errors_are_retried_in_order_and_never_reach_the_caller() -> None:
    sink = Sink()
    failures: list[Exception] = [TransportUnavailable("broker down")] * 3
    transport = ScriptedTransport(sink, failures)
    producer = MetricsProducer(
        make_settings(batch_max_events=10, batch_max_age_ms=3_600_000), transport
    )
    for i in range(50):
        assert _emit(producer, i)
    assert sink.wait_for_events(50)
    producer.close()
    assert [ev.bytes_in for ev in sink.events] == list(range(50))
    stats = producer.stats()
    assert stats.send_errors == 3
    assert stats.retries == 1
    assert stats.sent_events == 50
    assert stats.dropped_send == 0
    assert transport.attempts == 5 + 3


def test_poison_errors_drop_the_envelope_and_count_it() -> None:
    sink = Sink()
    transport = ScriptedTransport(sink, [TransportRejected("too large")])
    producer = MetricsProducer(
        make_settings(batch_max_events=10, batch_max_age_ms=3_600_000), transport
    )
    for i in range(30):
        assert _emit(producer, i)
    producer.close()
    stats = producer.stats()
    assert stats.dropped_send == 10
    assert stats.sent_events == 20
    assert stats.emitted == stats.sent_events + stats.dropped_send
    assert [ev.bytes_in for ev in sink.events] == list(range(10, 30))


def test_unexpected_deliver_errors_are_translated_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def broken(pool: str, payload: bytes) -> None:
        calls.append(pool)
        raise RuntimeError("pipeline bug")

    producer = MetricsProducer(make_settings(batch_max_age_ms=5), InProcessTransport(broken))
    with caplog.at_level(logging.WARNING, logger="producer"):
        for i in range(5):
            assert _emit(producer, i)
        producer.close()
    stats = producer.stats()
    assert stats.dropped_send == 5
    assert stats.send_errors == len(calls) >= 1
    assert any("rejected envelope" in r.getMessage() for r in caplog.records)
    assert all(r.name.startswith("producer.") for r in caplog.records)


def test_flush_times_out_while_the_transport_is_down_and_close_drops_the_rest() -> None:
    sink = Sink()
    transport = ScriptedTransport(sink, [TransportUnavailable("down")] * 10_000)
    producer = MetricsProducer(make_settings(batch_max_age_ms=5), transport)
    for i in range(20):
        assert _emit(producer, i)
    assert not producer.flush(timeout_s=0.3)
    assert producer.stats().buffered == 20
    producer.close(timeout_s=0.3)
    stats = producer.stats()
    assert stats.dropped_send == 20
    assert stats.buffered == 0
    assert stats.sent_events == 0
    assert sink.events == []


def test_rejections_are_logged_rate_limited_without_the_value(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    producer = MetricsProducer(make_settings(), InProcessTransport(Sink().deliver))
    with caplog.at_level(logging.DEBUG, logger="producer"):
        for _ in range(100):
            assert not producer.emit(pool="10.9.8.7:3128", region="eu", latency_ms=1.0)
    producer.close()
    records = [r for r in caplog.records if "rejected an event" in r.getMessage()]
    assert len(records) == 1
    assert "pool" in records[0].getMessage()
    assert "10.9.8.7" not in caplog.text
    assert producer.stats().rejected == producer.stats().rejected_privacy == 100
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


def test_prometheus_counters_on_the_callers_registry() -> None:
    registry = CollectorRegistry()
    producer = MetricsProducer(
        make_settings(), InProcessTransport(Sink().deliver), registry=registry
    )
    for i in range(7):
        assert _emit(producer, i)
    assert not producer.emit(pool="a/b", region="eu", latency_ms=1.0)
    producer.close()
    text = generate_latest(registry).decode()
    assert "pwm_producer_emitted_events_total 7.0" in text
    assert "pwm_producer_sent_events_total 7.0" in text
    assert 'pwm_producer_rejected_events_total{field="pool"} 1.0' in text
    assert "pwm_producer_emitted_events" not in generate_latest(REGISTRY).decode()
    own = MetricsProducer(make_settings(), InProcessTransport(Sink().deliver))
    assert "pwm_producer_buffered_events 0.0" in generate_latest(own.registry).decode()
    own.close()


def test_atexit_close_flushes_when_the_process_ends() -> None:
    code = (
        "import sys\n"
        "from producer import InProcessTransport, MetricsProducer, ProducerSettings\n"
        "from schemas.wire import decode_batch\n"
        "def deliver(pool, payload):\n"
        "    print(pool, len(decode_batch(payload).events), flush=True)\n"
        "s = ProducerSettings(source_host='exit-host', fleet_key=sys.argv[1],"
        " batch_max_age_ms=3600000, close_at_exit=sys.argv[2] == 'yes')\n"
        "p = MetricsProducer(s, InProcessTransport(deliver))\n"
        "for i in range(5):\n"
        "    p.emit(pool='pool-x', region='eu', latency_ms=1.0)\n"
    )
    outputs = {}
    for flag in ("yes", "no"):
        done = subprocess.run(
            [sys.executable, "-c", code, FLEET_KEY, flag],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outputs[flag] = done.stdout.split()
    assert outputs["yes"] == ["pool-x", "5"]
    assert outputs["no"] == []  # without the hook the daemon thread dies with the process


def test_close_from_the_flush_thread_does_not_deadlock() -> None:
    sink = Sink()
    holder: list[MetricsProducer] = []

    class ClosingTransport(ScriptedTransport):
        def send(self, pool: str, payload: bytes, event_count: int) -> None:
            super().send(pool, payload, event_count)
            holder[0].close(timeout_s=5.0)  # a transport giving up on its producer

        def close(self) -> None:
            super().close()
            closed.set()

    closed = threading.Event()
    transport = ClosingTransport(sink, failures=[])
    producer = MetricsProducer(make_settings(batch_max_age_ms=5), transport)
    holder.append(producer)
    assert _emit(producer, 1)
    assert sink.wait_for_events(1)
    assert closed.wait(10.0)
    assert not _emit(producer, 2)
    producer.close()
    assert transport.closed == 1
    assert producer.stats().sent_events == 1
