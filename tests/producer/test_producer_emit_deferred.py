"""emit_deferred(): the arguments are checked by the flush thread, with emit()'s checks and
counters; an invalid event is counted there, gives its place in the buffer back and is never
sent."""

from __future__ import annotations

import threading

import pytest
from producer_sink import Sink, make_settings

from producer import InProcessTransport, InvalidEvent, MetricsProducer, Outcome, PrivacyViolation


def _producer(sink: Sink, **overrides: object) -> MetricsProducer:
    settings = make_settings(batch_max_age_ms=10, **overrides)
    return MetricsProducer(settings, InProcessTransport(sink.deliver))


def test_a_deferred_event_is_sent_as_emit_would_send_it() -> None:
    sink = Sink()
    producer = _producer(sink)
    pid = producer.proxy_id("203.0.113.7:3128")
    args = ("pool-a", "eu", pid, Outcome.TIMEOUT, 12.5, 504, 100, 20, 2, "example.com")
    assert producer.emit(*args)
    assert producer.emit_deferred(*args)
    assert producer.flush(10.0)
    producer.close()
    sent, deferred = sink.events
    assert deferred.event_id != sent.event_id
    assert abs(deferred.ts_ms - sent.ts_ms) < 5_000
    fields = ("pool", "region", "proxy_id", "outcome", "latency_ms", "status_code")
    fields += ("bytes_in", "bytes_out", "attempts", "target_domain", "source_host")
    assert [getattr(deferred, f) for f in fields] == [getattr(sent, f) for f in fields]
    assert producer.stats().sent_events == 2


@pytest.mark.parametrize(
    ("overrides", "field", "privacy"),
    [
        ({"pool": "10.1.2.3"}, "pool", True),
        ({"region": "user:secret@host"}, "region", True),
        ({"proxy_id": "not-a-digest"}, "proxy_id", False),
        ({"latency_ms": float("nan")}, "latency_ms", False),
        ({"status_code": 700}, "status_code", False),
        ({"bytes_in": -1}, "bytes_in", False),
        ({"outcome": "exploded"}, "outcome", False),
        ({"target_domain": "192.168.0.1"}, "target_domain", True),
    ],
)
def test_an_invalid_deferred_event_is_counted_and_never_sent(
    overrides: dict[str, object], field: str, privacy: bool
) -> None:
    sink = Sink()
    producer = _producer(sink, max_buffer_events=10)
    good: dict[str, object] = {
        "pool": "pool-a",
        "region": "eu",
        "proxy_id": producer.proxy_id("203.0.113.7:3128"),
        "outcome": Outcome.SUCCESS,
        "latency_ms": 3.0,
        "status_code": 200,
        "bytes_in": 10,
        "bytes_out": 1,
        "attempts": 1,
        "target_domain": "example.com",
    }
    # Queued as they are: the request thread takes them.
    assert producer.emit_deferred(**{**good, **overrides})  # type: ignore[arg-type]
    assert producer.emit_deferred(**good)  # type: ignore[arg-type]
    assert producer.flush(10.0)
    stats = producer.stats()
    assert len(sink.events) == 1
    assert stats.rejected == 1
    assert stats.rejected_by_field == {field: 1}
    assert stats.rejected_privacy == (1 if privacy else 0)
    # Its place in the buffer came back: the bound still holds all 10 events.
    assert stats.buffered == 0
    assert stats.emitted == stats.sent_events == 1
    assert all(producer.emit_deferred(**good) for _ in range(10))  # type: ignore[arg-type]
    producer.close()
    assert producer.stats().sent_events == 11


def test_a_full_buffer_refuses_at_once() -> None:
    sink = Sink()
    gate = threading.Event()

    def deliver_when_opened(pool: str, payload: bytes) -> None:
        gate.wait(10.0)
        sink.deliver(pool, payload)

    producer = MetricsProducer(
        make_settings(max_buffer_events=3, batch_max_events=1, batch_max_age_ms=10),
        InProcessTransport(deliver_when_opened),
    )
    accepted = [producer.emit_deferred("pool-a", "eu", latency_ms=1.0) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert producer.stats().dropped_full == 2
    gate.set()
    assert producer.flush(10.0)
    producer.close()
    assert len(sink.events) == 3


def test_strict_settings_check_on_the_calling_thread() -> None:
    sink = Sink()
    producer = _producer(sink, strict=True)
    with pytest.raises(PrivacyViolation):
        producer.emit_deferred("10.1.2.3", "eu")
    with pytest.raises(InvalidEvent):
        producer.emit_deferred("pool-a", "eu", latency_ms=-1.0)
    assert producer.emit_deferred("pool-a", "eu")
    producer.close()
    assert producer.stats().rejected == 2
    assert len(sink.events) == 1


def test_deferred_and_checked_events_from_many_threads_all_arrive_with_unique_ids() -> None:
    sink = Sink()
    producer = _producer(sink, batch_max_events=50)
    per_thread = 2000
    start = threading.Barrier(4)

    def work(t: int) -> None:
        start.wait()
        emit = producer.emit_deferred if t % 2 else producer.emit
        for i in range(per_thread):
            assert emit(f"pool-{i % 3}", "eu", None, Outcome.SUCCESS, 1.0, 200, t * 100_000 + i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert producer.flush(20.0)
    producer.close()
    events = sink.events
    assert sorted(ev.bytes_in for ev in events) == sorted(
        t * 100_000 + i for t in range(4) for i in range(per_thread)
    )
    assert len({ev.event_id for ev in events}) == len(events)
    stats = producer.stats()
    assert stats.emitted == stats.sent_events == 4 * per_thread
    assert stats.buffered == stats.rejected == 0
