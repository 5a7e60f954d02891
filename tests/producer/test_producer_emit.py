"""emit() from many threads and coroutines: nothing lost under the bound, drops counted above."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from producer_sink import ScriptedTransport, Sink, make_settings

from producer import InProcessTransport, MetricsProducer, Outcome
from schemas.events import EventBatch


def _emit_marked(producer: MetricsProducer, marker: int, pool: str = "pool-a") -> bool:
    """One event whose bytes_in carries a unique marker, so deliveries can be matched."""
    return producer.emit(
        pool=pool,
        region="eu",
        proxy_id=producer.proxy_id(f"10.0.0.{marker % 200}:8080"),
        outcome=Outcome.SUCCESS if marker % 3 else "timeout",
        latency_ms=float(marker % 997) + 0.5,
        status_code=200,
        bytes_in=marker,
        bytes_out=7,
    )


def test_eight_threads_lose_nothing_below_the_bound() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_events=97, batch_max_age_ms=20), InProcessTransport(sink.deliver)
    )
    per_thread = 4000
    start = threading.Barrier(8)
    results: list[list[bool]] = [[] for _ in range(8)]

    def work(t: int) -> None:
        start.wait()
        pools = ("pool-a", "pool-b", "pool-c")
        results[t] = [
            _emit_marked(producer, t * 1_000_000 + i, pools[i % 3]) for i in range(per_thread)
        ]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert producer.flush(timeout_s=20.0)
    producer.close()

    assert all(all(r) for r in results)
    expected = {t * 1_000_000 + i for t in range(8) for i in range(per_thread)}
    events = sink.events
    assert len(events) == len(expected)
    assert {ev.bytes_in for ev in events} == expected
    assert len({ev.event_id for ev in events}) == len(events)
    assert len({b.batch_id for b in sink.batches}) == len(sink.batches)
    assert all(len(b.events) <= 97 for b in sink.batches)
    for pool, batch in zip(sink.payload_pools, sink.batches, strict=True):
        assert batch.pool == pool
        assert {ev.pool for ev in batch.events} == {pool}
    stats = producer.stats()
    assert stats.emitted == stats.sent_events == len(expected)
    assert stats.sent_batches == len(sink.batches)
    assert stats.dropped_full == stats.dropped_send == stats.rejected == stats.buffered == 0


async def test_asyncio_tasks_lose_nothing() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_events=64, batch_max_age_ms=10), InProcessTransport(sink.deliver)
    )

    async def task(t: int) -> list[bool]:
        accepted = []
        for i in range(300):
            accepted.append(_emit_marked(producer, t * 10_000 + i, f"pool-{t % 4}"))
            if i % 25 == 0:
                await asyncio.sleep(0)
        return accepted

    results = await asyncio.gather(*(task(t) for t in range(20)))
    assert await producer.aflush(timeout_s=10.0)
    await producer.aclose()

    assert all(all(r) for r in results)
    expected = {t * 10_000 + i for t in range(20) for i in range(300)}
    assert sorted(ev.bytes_in for ev in sink.events) == sorted(expected)
    stats = producer.stats()
    assert stats.emitted == stats.sent_events == len(expected)


def test_above_the_bound_drops_are_counted_exactly() -> None:
    sink = Sink()
    transport = ScriptedTransport(sink, failures=[])
    transport.gate.clear()  # nothing leaves until released: the buffer must fill up
    producer = MetricsProducer(
        make_settings(max_buffer_events=1000, batch_max_events=100, batch_max_age_ms=5),
        transport,
    )
    accepted: list[set[int]] = [set() for _ in range(4)]
    start = threading.Barrier(4)

    def work(t: int) -> None:
        start.wait()
        for i in range(2500):
            marker = t * 100_000 + i
            if _emit_marked(producer, marker):
                accepted[t].add(marker)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = producer.stats()
    assert stats.emitted == 10_000
    assert stats.buffered == 1000
    assert stats.dropped_full == 9000
    assert stats.sent_events == 0

    transport.gate.set()
    producer.close(timeout_s=10.0)
    delivered = {ev.bytes_in for ev in sink.events}
    assert delivered == set().union(*accepted)
    stats = producer.stats()
    assert stats.emitted == stats.sent_events + stats.dropped_full
    assert stats.sent_events == 1000
    assert stats.buffered == 0


def test_buffer_frees_up_as_envelopes_are_sent() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(max_buffer_events=50, batch_max_events=50, batch_max_age_ms=5),
        InProcessTransport(sink.deliver),
    )
    for round_no in range(5):
        assert all(_emit_marked(producer, round_no * 100 + i) for i in range(50))
        assert sink.wait_for_events(50 * (round_no + 1))
        assert producer.flush(timeout_s=5.0)
    producer.close()
    assert producer.stats().dropped_full == 0
    assert len(sink.events) == 250


def test_emit_after_close_returns_false_and_is_counted() -> None:
    sink = Sink()
    producer = MetricsProducer(make_settings(), InProcessTransport(sink.deliver))
    assert _emit_marked(producer, 1)
    producer.close()
    assert not _emit_marked(producer, 2)
    stats = producer.stats()
    assert stats.dropped_closed == 1
    assert stats.emitted == stats.sent_events == 1
    assert [ev.bytes_in for ev in sink.events] == [1]


def test_envelopes_match_the_documented_contract() -> None:
    sink = Sink()
    raw: list[bytes] = []

    def deliver(pool: str, payload: bytes) -> None:
        raw.append(payload)
        sink.deliver(pool, payload)

    producer = MetricsProducer(make_settings(), InProcessTransport(deliver))
    before_ms = time.time_ns() // 1_000_000
    pid = producer.proxy_id("proxy.internal:3128")
    assert producer.emit(
        pool="pool-a",
        region="eu-west",
        proxy_id=pid,
        outcome="http_error",
        latency_ms=12,
        status_code=503,
        bytes_in=10,
        bytes_out=20,
        attempts=2,
        target_domain="api.example.com",
    )
    assert producer.emit(pool="pool-a", region="eu-west", latency_ms=1.5, ts_ms=1234)
    producer.close()
    after_ms = time.time_ns() // 1_000_000
    assert len(raw) == 1
    batch = EventBatch.model_validate_json(raw[0])
    assert batch.source_host == "host-1"
    assert batch.pool == "pool-a"
    first, second = batch.events
    assert before_ms <= first.ts_ms <= after_ms
    assert first.outcome is Outcome.HTTP_ERROR
    assert (first.proxy_id, first.status_code, first.attempts) == (pid, 503, 2)
    assert first.latency_ms == 12.0
    assert first.target_domain == "api.example.com"
    assert second.ts_ms == 1234
    assert second.proxy_id is None
    assert second.status_code is None


def test_ids_are_unique_across_producers() -> None:
    sink = Sink()
    producers = [
        MetricsProducer(make_settings(), InProcessTransport(sink.deliver)) for _ in range(3)
    ]
    for p in producers:
        for i in range(10):
            assert _emit_marked(p, i)
        p.close()
    events = sink.events
    assert len(events) == 30
    assert len({ev.event_id for ev in events}) == 30
    assert len({b.batch_id for b in sink.batches}) == len(sink.batches) == 3
    assert all(b.batch_id.startswith("host-1-") for b in sink.batches)


def test_target_domain_can_be_disabled() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(include_target_domain=False), InProcessTransport(sink.deliver)
    )
    assert producer.emit(pool="p", region="r", latency_ms=1.0, target_domain="example.com")
    producer.close()
    assert [ev.target_domain for ev in sink.events] == [None]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"latency_ms": -1.0}, "latency_ms"),
        ({"latency_ms": float("inf")}, "latency_ms"),
        ({"latency_ms": "12"}, "latency_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"latency_ms": None}, "latency_ms"),
        ({"outcome": "exploded"}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"status_code": 700}, "status_code"),
        ({"status_code": True}, "status_code"),
        ({"status_code": 200.0}, "status_code"),
        ({"bytes_in": -5}, "bytes_in"),
        ({"bytes_out": 1.5}, "bytes_out"),
        ({"attempts": 0}, "attempts"),
        ({"ts_ms": -1}, "ts_ms"),
        ({"pool": ""}, "pool"),
        ({"pool": "x" * 65}, "pool"),
        ({"pool": None}, "pool"),
        ({"pool": ["unhashable"]}, "arguments"),
        ({"region": "eu west"}, "region"),
        ({"target_domain": "under_score.example.com"}, "target_domain"),
    ],
)
def test_invalid_arguments_are_rejected_and_counted(kwargs: dict[str, object], field: str) -> None:
    sink = Sink()
    producer = MetricsProducer(make_settings(), InProcessTransport(sink.deliver))
    args: dict[str, object] = {"pool": "pool-a", "region": "eu", "latency_ms": 5.0}
    args.update(kwargs)
    accepted = producer.emit(**args)  # type: ignore[arg-type]
    producer.close()
    stats = producer.stats()
    assert not accepted
    assert stats.rejected == 1
    assert stats.rejected_by_field == {field: 1}
    assert stats.emitted == 0
    assert sink.events == []


def test_strict_mode_raises_for_development() -> None:
    from producer import InvalidEvent, PrivacyViolation

    producer = MetricsProducer(make_settings(strict=True), InProcessTransport(Sink().deliver))
    with pytest.raises(PrivacyViolation, match="pool"):
        producer.emit(pool="10.1.2.3", region="eu", latency_ms=1.0)
    with pytest.raises(InvalidEvent, match="latency_ms"):
        producer.emit(pool="p", region="eu", latency_ms=-3.0)
    producer.close()
    assert producer.stats().rejected == 2
