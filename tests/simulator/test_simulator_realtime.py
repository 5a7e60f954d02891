"""run_realtime paces the generator against the wall clock and emits exactly its events."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from simulator_stats import ORIGIN_MS, poisson_ok, small_scenario

from producer import InProcessTransport, MetricsProducer, ProducerSettings
from schemas.wire import WireEvent, decode_batch
from stream_app.simulator import FleetSimulator, RealtimeReport, run_realtime

pytestmark = pytest.mark.timeout(60)


class FakeEmit:
    """Collects emit() keyword arguments with the monotonic time of each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.at: list[float] = []
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def __call__(self, **kwargs: Any) -> bool:
        self.calls.append(kwargs)
        self.at.append(time.monotonic())
        for count, event in self._waiters:
            if len(self.calls) >= count:
                event.set()
        return True

    def reached(self, count: int) -> asyncio.Event:
        """An event set once ``count`` calls have been made."""
        event = asyncio.Event()
        if len(self.calls) >= count:
            event.set()
        self._waiters.append((count, event))
        return event


def _as_params(events: list[WireEvent]) -> list[dict[str, Any]]:
    return [
        {
            "pool": ev.pool,
            "region": ev.region,
            "proxy_id": ev.proxy_id,
            "outcome": ev.outcome,
            "latency_ms": ev.latency_ms,
            "status_code": ev.status_code,
            "bytes_in": ev.bytes_in,
            "bytes_out": ev.bytes_out,
            "attempts": ev.attempts,
            "target_domain": ev.target_domain,
            "ts_ms": ev.ts_ms,
        }
        for ev in events
    ]


async def test_emits_exactly_the_generated_events_at_the_wall_clock_pace() -> None:
    sim = FleetSimulator(small_scenario(), seed=31, origin_ms=ORIGIN_MS)
    emit = FakeEmit()
    started = time.monotonic()
    wall_at_start_ms = time.time() * 1000
    report = await run_realtime(sim, emit, duration_s=1.5, stop=asyncio.Event(), tick_ms=20)
    elapsed_s = time.monotonic() - started
    assert report.finished
    assert report.virtual_start_ms == ORIGIN_MS
    assert report.virtual_end_ms == ORIGIN_MS + 1_500
    assert report.emitted == len(emit.calls)
    assert poisson_ok(report.emitted, 2_000 * 1.5)
    # Exactly the virtual-time events, with ts mapped onto the wall clock.
    truth = list(sim.events_between(ORIGIN_MS, ORIGIN_MS + 1_500, ts_shift_ms=report.shift_ms))
    assert emit.calls == _as_params(truth)
    assert list(report.emitted_events(sim)) == truth
    assert abs(emit.calls[0]["ts_ms"] - wall_at_start_ms) < 1_000
    # Paced: it took the duration, and no event was emitted before its time came.
    assert elapsed_s >= 1.5
    virtual_s = [(kw["ts_ms"] - report.shift_ms - ORIGIN_MS) / 1000 for kw in emit.calls]
    assert all(at - started >= v - 0.005 for at, v in zip(emit.at, virtual_s, strict=True))
    # (How far behind it runs is measured by benchmarks/simulator_rate.py, not asserted here.)


async def test_stop_ends_an_endless_run_with_a_consistent_report() -> None:
    sim = FleetSimulator(small_scenario(), seed=32, origin_ms=ORIGIN_MS)
    emit = FakeEmit()
    stop = asyncio.Event()
    report = RealtimeReport()
    task = asyncio.create_task(run_realtime(sim, emit, stop=stop, tick_ms=10, report=report))
    async with asyncio.timeout(20):
        await emit.reached(300).wait()
    assert not task.done()
    stop.set()
    async with asyncio.timeout(5):
        final = await task
    assert final is report
    assert not report.finished
    assert report.emitted == len(emit.calls) >= 300
    assert emit.calls == _as_params(list(report.emitted_events(sim)))


async def test_with_delayed_deliveries_the_fleet_starts_with_the_run() -> None:
    delivery = {"jitter_ms": 100, "delayed_fraction": 0.05, "delay_min_ms": 200}
    scenario = small_scenario(delivery={**delivery, "delay_max_ms": 600})
    sim = FleetSimulator(scenario, seed=35, origin_ms=ORIGIN_MS)
    emit = FakeEmit()
    report = await run_realtime(sim, emit, duration_s=1.0, stop=asyncio.Event(), tick_ms=20)
    emitted = list(report.emitted_events(sim))
    assert emit.calls == _as_params(emitted)
    virtual_ts = [kw["ts_ms"] - report.shift_ms for kw in emit.calls]
    assert min(virtual_ts) >= ORIGIN_MS
    # Late deliveries did happen: some events came after later ones.
    assert any(b < a for a, b in itertools.pairwise(virtual_ts))


async def test_a_busy_tick_yields_to_the_event_loop() -> None:
    sim = FleetSimulator(small_scenario().with_total_rate(20_000), seed=33, origin_ms=ORIGIN_MS)
    beats = 0
    beats_seen: list[int] = []

    def emit(**_: Any) -> bool:
        beats_seen.append(beats)
        return True

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat())
    try:
        # One-second ticks of ~20k events each, yielding every 1,000 calls.
        report = await run_realtime(
            sim, emit, duration_s=2.2, stop=asyncio.Event(), tick_ms=1_000, yield_every=1_000
        )
    finally:
        beat.cancel()
    assert report.emitted == len(beats_seen) > 35_000
    # The heartbeat ran inside ticks, not only between them (at most 3 tick boundaries here).
    changes = sum(1 for a, b in itertools.pairwise(beats_seen) if b != a)
    assert changes >= 30


async def test_events_are_accepted_by_the_real_producer() -> None:
    sim = FleetSimulator(small_scenario(), seed=34, origin_ms=ORIGIN_MS)
    received: list[WireEvent] = []
    settings = ProducerSettings(
        source_host="sim-host", fleet_key="test-fleet-key-0123", strict=True, close_at_exit=False
    )
    producer = MetricsProducer(
        settings,
        InProcessTransport(lambda pool, payload: received.extend(decode_batch(payload).events)),
    )
    try:
        report = await run_realtime(sim, producer.emit, duration_s=0.5, stop=asyncio.Event())
        assert producer.flush(timeout_s=10)
    finally:
        producer.close()
    assert len(received) == report.emitted > 0
    truth = report.emitted_events(sim)
    key = lambda ev: (ev.ts_ms, ev.proxy_id, ev.latency_ms)  # noqa: E731
    assert sorted(map(key, received)) == sorted(map(key, truth))


async def test_arguments_are_validated() -> None:
    sim = FleetSimulator(small_scenario(), seed=1)
    with pytest.raises(ValueError, match="tick_ms"):
        await run_realtime(sim, FakeEmit(), stop=asyncio.Event(), tick_ms=0)
    with pytest.raises(ValueError, match="duration_s"):
        await run_realtime(sim, FakeEmit(), stop=asyncio.Event(), duration_s=0)
    with pytest.raises(ValueError, match="yield_every"):
        await run_realtime(sim, FakeEmit(), stop=asyncio.Event(), yield_every=0)
