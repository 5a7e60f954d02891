"""The lock-free request path: emitters never wait for the flush thread, and nothing is lost,
duplicated or miscounted while they race it (producer.buffer)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from producer_sink import ScriptedTransport, Sink, make_settings

import producer.shipper as shipper_module
from producer import InProcessTransport, MetricsProducer, ProducerStats
from producer.envelope import Envelope
from producer.tally import Tally
from schemas.wire import WireEvent

WAIT_S = 20.0


def _emit(producer: MetricsProducer, marker: int, pool: str = "pool-a") -> bool:
    return producer.emit(pool=pool, region="eu", latency_ms=1.0, bytes_in=marker)


def _run_threads(count: int, work: object) -> list[threading.Thread]:
    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(count)]
    for t in threads:
        t.start()
    return threads


def _joined(threads: list[threading.Thread]) -> bool:
    for t in threads:
        t.join(WAIT_S)
    return not any(t.is_alive() for t in threads)


def _seq(event: WireEvent) -> int:
    return int(event.event_id.rsplit("-", 1)[1], 16)


def _identity_holds(stats: ProducerStats) -> bool:
    return stats.emitted == (
        stats.sent_events + stats.dropped_full + stats.dropped_send + stats.buffered
    )


def test_emitters_finish_while_the_flush_thread_is_stuck_in_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No lock is held across encoding: emit() keeps returning while an envelope is being
    built, and every event then arrives exactly once."""
    entered, release = threading.Event(), threading.Event()
    real_build = shipper_module.build_envelope

    def stuck_build(*args: object, **kwargs: object) -> Envelope:
        entered.set()
        assert release.wait(WAIT_S)
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shipper_module, "build_envelope", stuck_build)
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_events=50, batch_max_age_ms=3_600_000),
        InProcessTransport(sink.deliver),
    )
    assert all(_emit(producer, i) for i in range(50))  # one full batch: the thread encodes
    assert entered.wait(WAIT_S)
    results: list[list[bool]] = [[] for _ in range(4)]

    def work(t: int) -> None:
        results[t] = [_emit(producer, 1000 * (t + 1) + i, f"pool-{t}") for i in range(500)]

    assert _joined(_run_threads(4, work))  # while the flush thread is still inside encoding
    assert not release.is_set()
    assert all(all(r) for r in results)
    release.set()
    producer.close()
    markers = [ev.bytes_in for ev in sink.events]
    assert sorted(markers) == sorted(
        [*range(50), *(1000 * (t + 1) + i for t in range(4) for i in range(500))]
    )
    stats = producer.stats()
    assert stats.emitted == stats.sent_events == 2050
    assert stats.buffered == 0


def test_emitters_finish_while_the_transport_is_blocked_and_drops_are_exact() -> None:
    """A send that never returns blocks nobody: emitters fill the bound, then every further
    call is counted as dropped_full, exactly, from 8 threads at once."""
    sink = Sink()
    transport = ScriptedTransport(sink, failures=[])
    transport.gate.clear()
    producer = MetricsProducer(
        make_settings(max_buffer_events=777, batch_max_events=10, batch_max_age_ms=1), transport
    )
    accepted: list[list[int]] = [[] for _ in range(8)]

    def work(t: int) -> None:
        for i in range(400):
            if _emit(producer, t * 10_000 + i, f"pool-{t % 3}"):
                accepted[t].append(t * 10_000 + i)

    assert _joined(_run_threads(8, work))
    stats = producer.stats()
    assert stats.emitted == 3200
    assert stats.buffered == 777
    assert stats.dropped_full == 3200 - 777
    assert sum(len(a) for a in accepted) == 777
    transport.gate.set()
    assert producer.flush(timeout_s=WAIT_S)
    producer.close()
    assert sorted(ev.bytes_in for ev in sink.events) == sorted(m for a in accepted for m in a)
    assert producer.stats().sent_events == 777


def test_each_threads_events_arrive_once_and_in_its_order() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_events=64, batch_max_age_ms=2), InProcessTransport(sink.deliver)
    )

    def work(t: int) -> None:
        for i in range(3000):
            assert _emit(producer, t * 100_000 + i, f"pool-{i % 4}")

    assert _joined(_run_threads(6, work))
    assert producer.flush(timeout_s=WAIT_S)
    producer.close()
    events = sink.events
    assert len(events) == len({ev.event_id for ev in events}) == 6 * 3000
    for t in range(6):
        mine = [ev for ev in events if ev.bytes_in // 100_000 == t]
        for pool in {ev.pool for ev in mine}:
            in_pool = [ev for ev in mine if ev.pool == pool]
            # Per pool, envelopes leave in order and keep the order events were offered in,
            # which for one thread is the order of its calls and of its sequence numbers.
            assert [ev.bytes_in for ev in in_pool] == sorted(ev.bytes_in for ev in in_pool)
            assert [_seq(ev) for ev in in_pool] == sorted(_seq(ev) for ev in in_pool)


def test_snapshots_taken_while_threads_emit_are_consistent() -> None:
    sink = Sink()
    producer = MetricsProducer(
        make_settings(max_buffer_events=2000, batch_max_events=100, batch_max_age_ms=1),
        InProcessTransport(sink.deliver),
    )
    done = threading.Event()
    snapshots: list[ProducerStats] = []

    def read() -> None:
        while not done.is_set():
            snapshots.append(producer.stats())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def work(t: int) -> None:
        for i in range(5000):
            _emit(producer, i, f"pool-{t}")

    assert _joined(_run_threads(4, work))
    done.set()
    reader.join(WAIT_S)
    assert producer.flush(timeout_s=WAIT_S)
    producer.close()
    assert snapshots
    assert all(_identity_holds(s) and 0 <= s.buffered <= 2000 for s in snapshots)
    emitted = [s.emitted for s in snapshots]
    assert emitted == sorted(emitted)
    final = producer.stats()
    assert final.emitted == 20_000 == final.sent_events + final.dropped_full
    assert final.sent_events == len(sink.events)


@pytest.mark.parametrize("round_no", range(3))
def test_close_racing_emitters_settles_every_accepted_event(round_no: int) -> None:
    """Every call that returned True is delivered or counted as dropped at close; nothing is
    left buffered, and calls after close() are refused."""
    sink = Sink()
    producer = MetricsProducer(
        make_settings(batch_max_events=32, batch_max_age_ms=1), InProcessTransport(sink.deliver)
    )
    started, closing = threading.Barrier(5), threading.Event()
    accepted: list[list[int]] = [[] for _ in range(4)]

    def work(t: int) -> None:
        started.wait()
        for i in range(10_000_000):
            marker = t * 10_000_000 + i
            if _emit(producer, marker):
                accepted[t].append(marker)
            elif closing.is_set():
                return  # refused: closed (or full, then closed on a later call)

    threads = _run_threads(4, work)
    started.wait()
    assert sink.wait_for_events(200 * (round_no + 1))
    closing.set()
    producer.close(timeout_s=WAIT_S)
    assert _joined(threads)
    stats = producer.stats()
    assert stats.buffered == 0
    assert _identity_holds(stats)
    delivered = [ev.bytes_in for ev in sink.events]
    assert len(delivered) == len(set(delivered)) == stats.sent_events
    all_accepted = {m for a in accepted for m in a}
    assert set(delivered) <= all_accepted
    assert len(all_accepted) == stats.sent_events + stats.dropped_send
    assert stats.emitted == len(all_accepted) + stats.dropped_full
    assert not _emit(producer, 1)
    assert producer.stats().dropped_closed >= 1


def test_an_event_offered_across_the_whole_close_is_settled() -> None:
    """The race above made certain: an emitter holds its permit (preempted between taking it
    and queueing its event) while close() runs to the end; its event is then counted as
    dropped at close, not left buffered."""
    sink = Sink()
    producer = MetricsProducer(make_settings(), InProcessTransport(sink.deliver))
    buffer = producer._buffer
    real_append = buffer._append
    holding, resume = threading.Event(), threading.Event()

    def preempted_append(event: WireEvent) -> None:
        holding.set()
        assert resume.wait(WAIT_S)
        real_append(event)

    buffer._append = preempted_append  # type: ignore[method-assign]
    result: list[bool] = []
    straggler = threading.Thread(target=lambda: result.append(_emit(producer, 7)), daemon=True)
    straggler.start()
    assert holding.wait(WAIT_S)
    assert producer.stats().buffered == 1
    producer.close(timeout_s=WAIT_S)  # the flush thread finishes: nothing was queued
    resume.set()
    assert _joined([straggler])
    assert result == [True]
    stats = producer.stats()
    assert (stats.emitted, stats.sent_events, stats.dropped_send, stats.buffered) == (1, 0, 1, 0)
    assert sink.events == []


def test_emit_allocates_nothing_the_garbage_collector_tracks() -> None:
    """Tracked allocations trigger collections on the request path (the p99.9 tail)."""
    producer = MetricsProducer(
        make_settings(batch_max_events=10_000, batch_max_age_ms=3_600_000),
        InProcessTransport(lambda pool, payload: None),
    )
    pid = producer.proxy_id("10.0.0.1:8080")
    assert _emit(producer, 0)  # first sight of the labels, the flush thread's first batch
    assert producer.flush(timeout_s=WAIT_S)
    gc.disable()
    try:
        before = gc.get_count()[0]
        for i in range(2000):
            producer.emit("pool-a", "eu", pid, "success", 1.5, 200, i)
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    producer.close()
    assert grown < 50  # the flush thread may wake once; 2000 emits would give >= 2000


def test_tally_counts_every_add_from_many_threads() -> None:
    tally = Tally(fold_at=100)

    def work(t: int) -> None:
        for _ in range(10_000):
            tally.add()

    assert _joined(_run_threads(8, work))
    assert tally.value == 80_000


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.name.startswith("pwm")]
    for t in leftover:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in leftover)
