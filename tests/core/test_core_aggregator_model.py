"""The aggregator against the brute-force model, on random streams and random flush points.

Streams are out of order within the grace, with some events late beyond it, over several pools,
regions and proxies (and events without a proxy), with wall-clock gaps that make the idle rule
close windows, and with event times ahead of the wall clock for the skew guard.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace

import pytest
from core_events import T0_MS, acc_fields, assert_matches, wire_events
from core_reference import ReferenceAggregator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas.aggregates import WindowAggregate
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import Flush


def assert_same_latency(a: WindowAggregate, b: WindowAggregate) -> None:
    assert a.latency.model_dump(exclude={"sum_ms"}) == b.latency.model_dump(exclude={"sum_ms"})
    assert math.isclose(a.latency.sum_ms, b.latency.sum_ms, rel_tol=1e-9, abs_tol=1e-6)


@dataclass(frozen=True)
class Scenario:
    window_s: int
    proxy_window_s: int
    grace_ms: int
    idle_timeout_ms: int
    max_future_skew_ms: int | None
    ops: list[tuple[str, int, list[WireEvent]]]  # (kind, now_ms, record)


def on_grid(low: int, high: int, step_ms: int = 500) -> st.SearchStrategy[int]:
    """Multiples of ``step_ms`` in [low, high]: clocks on a grid shared with window edges."""
    return st.integers(-(-low // step_ms), high // step_ms).map(lambda x: x * step_ms)


def offsets(low: int, high: int) -> st.SearchStrategy[int]:
    """Mostly on the grid, so events land exactly on window and watermark edges; some off it."""
    return st.one_of(on_grid(low, high), on_grid(low, high, 100), st.integers(low, high))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    window_s = draw(st.sampled_from([1, 2, 5]))
    proxy_window_s = window_s * draw(st.sampled_from([1, 2, 3]))
    grace_ms = draw(st.sampled_from([0, 300, 1_500, 2_000]))
    idle_timeout_ms = draw(st.sampled_from([0, 700, 3_000]))
    skew = draw(st.sampled_from([None, 2_000]))
    wall = T0_MS + draw(on_grid(0, 9_999))
    ops: list[tuple[str, int, list[WireEvent]]] = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["add"] * 6 + ["flush", "close", "idle"]))
        wall += draw(on_grid(0, 1_000))
        if kind == "idle":
            # The stream goes quiet: a long wall-clock gap, then a close.
            wall += draw(on_grid(1_000, 20_000))
            ops.append(("close", wall, []))
        elif kind == "add":
            # Event time follows the wall clock a little behind (batching, transport), events
            # are out of order within and beyond the grace, a few come from clocks ahead.
            sent = wall - draw(on_grid(0, 1_000))
            ahead_ms = draw(st.sampled_from([400] * 9 + [4_000]))
            size = draw(st.integers(0, 6))
            record = [
                draw(wire_events(sent + draw(offsets(-(grace_ms + 3_000), ahead_ms))))
                for _ in range(size)
            ]
            ops.append(("add", wall, record))
        else:
            ops.append((kind, wall, []))
    return Scenario(window_s, proxy_window_s, grace_ms, idle_timeout_ms, skew, ops)


def build(s: Scenario) -> tuple[WindowAggregator, ReferenceAggregator]:
    config = AggregatorConfig(
        window_s=s.window_s,
        proxy_window_s=s.proxy_window_s,
        grace_ms=s.grace_ms,
        idle_timeout_ms=s.idle_timeout_ms,
        max_future_skew_ms=s.max_future_skew_ms,
    )
    ref = ReferenceAggregator(
        window_s=s.window_s,
        grace_ms=s.grace_ms,
        proxy_window_s=s.proxy_window_s,
        idle_timeout_ms=s.idle_timeout_ms,
        max_future_skew_ms=s.max_future_skew_ms,
    )
    return WindowAggregator(config), ref


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_aggregator_matches_brute_force(s: Scenario) -> None:
    agg, ref = build(s)
    flushed_scopes: dict[tuple[int, str, str], Accumulator] = defaultdict(Accumulator)
    flushed_proxies: dict[tuple[int, str, str, str], Accumulator] = defaultdict(Accumulator)
    closed_scopes = {}
    closed_proxies = {}
    offset = 0
    offsets_since_flush: list[int] = []
    events_total = 0

    def take() -> None:
        nonlocal offsets_since_flush
        flush = agg.flush()
        for c in flush.scopes:
            assert c.window_s == s.window_s
            flushed_scopes[(c.window_start_ms, c.scope.pool, c.scope.region)].merge(c.acc)
        for c in flush.proxies:
            assert c.window_s == s.proxy_window_s
            assert c.scope.proxy_id is not None
            key = (c.window_start_ms, c.scope.pool, c.scope.region, c.scope.proxy_id)
            flushed_proxies[key].merge(c.acc)
        if offsets_since_flush:
            assert [
                (r.source, r.partition, r.first_offset, r.last_offset) for r in flush.ranges
            ] == [("topic", 0, min(offsets_since_flush), max(offsets_since_flush))]
        else:
            assert flush.ranges == []
        offsets_since_flush = []

    def close(now_ms: int) -> None:
        closed = agg.close_due_windows(now_ms)
        want_scopes, want_proxies = ref.close(now_ms)
        got_scopes = {(a.window_start_ms, a.scope.pool, a.scope.region): a for a in closed.scopes}
        got_proxies = {
            (a.window_start_ms, a.scope.pool, a.scope.region, a.scope.proxy_id): a
            for a in closed.proxies
        }
        assert set(got_scopes) == set(want_scopes)
        assert set(got_proxies) == set(want_proxies)
        order = [(a.window_start_ms, a.scope.pool, a.scope.region) for a in closed.scopes]
        assert order == sorted(order)
        for key, exp in want_scopes.items():
            assert got_scopes[key].window_s == s.window_s
            assert_matches(got_scopes[key], exp)
        for pkey, exp in want_proxies.items():
            assert got_proxies[pkey].window_s == s.proxy_window_s
            assert_matches(got_proxies[pkey], exp)
        closed_scopes.update(got_scopes)
        closed_proxies.update(got_proxies)

    for kind, now_ms, record in s.ops:
        if kind == "add":
            agg.add(record, source="topic", partition=0, offset=offset, now_ms=now_ms)
            ref.add(record, now_ms)
            offsets_since_flush.append(offset)
            offset += 1
            events_total += len(record)
        elif kind == "flush":
            take()
        else:
            close(now_ms)

    # The end of the stream: a day of silence closes everything, then the last flush.
    last_wall = s.ops[-1][1]
    close(last_wall + 86_400_000)
    take()
    assert agg.stats.open_windows == 0
    assert agg.stats.open_proxy_windows == 0
    assert agg.stats.pending_events == 0

    # Late events are exactly the ones the model says, kept in arrival order.
    late = agg.drain_late()
    assert [x.event.event_id for x in late] == [e.event_id for e in ref.late]
    for x in late:
        assert x.window_start_ms + s.window_s * 1000 <= x.watermark_ms
    stats = agg.stats
    assert stats.late_events == len(ref.late)
    assert stats.events_accepted == events_total - len(ref.late)
    assert stats.late_dropped_overflow == 0
    assert stats.proxy_overflow == 0
    # Every late event is reported on an aggregate of its scope.
    reported = sum(a.late_events for a in closed_scopes.values())
    assert reported == len(ref.late)

    event(f"late events: {min(len(ref.late), 3)}+")
    event(f"closed pool windows: {min(len(closed_scopes), 5)}+")
    event(f"closed proxy windows: {min(len(closed_proxies), 5)}+")

    # The flushed partial sums add up to exactly the closed aggregates.
    assert set(flushed_scopes) == set(closed_scopes)
    assert set(flushed_proxies) == set(closed_proxies)
    for key, acc in flushed_scopes.items():
        got = acc.to_aggregate(closed_scopes[key].scope, key[0], s.window_s)
        assert got.model_dump(exclude={"latency"}) == closed_scopes[key].model_dump(
            exclude={"latency"}
        )
        assert_same_latency(got, closed_scopes[key])
    for pkey, acc in flushed_proxies.items():
        closed_acc = closed_proxies[pkey]
        got = acc.to_aggregate(closed_acc.scope, pkey[0], s.proxy_window_s)
        assert got.model_dump(exclude={"latency"}) == closed_acc.model_dump(exclude={"latency"})
        assert_same_latency(got, closed_acc)


def contribution_rows(flush: Flush) -> dict[tuple[object, ...], dict[str, object]]:
    return {
        (c.window_start_ms, c.window_s, c.scope): acc_fields(c.acc)
        for c in [*flush.scopes, *flush.proxies]
    }


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_flush_is_rebuilt_exactly_from_its_start_state_and_records(s: Scenario) -> None:
    """What a worker does after a crash: same watermark state + same records = same rows."""
    live, _ = build(replace(s, max_future_skew_ms=None))
    state = live.watermark_state()
    since_flush: list[tuple[int, list[WireEvent]]] = []
    for kind, now_ms, record in s.ops:
        if kind == "add":
            live.add(record, source="t", partition=0, offset=len(since_flush), now_ms=now_ms)
            since_flush.append((now_ms, record))
            continue
        # The runtime's cycle: close due windows, then take the flush.
        live.close_due_windows(now_ms)
        flush = live.flush()
        rebuilt, _ = build(replace(s, max_future_skew_ms=None))
        much_later_ms = now_ms + 3_600_000
        rebuilt.restore_watermark(state, much_later_ms)
        for offset, (_, rec) in enumerate(since_flush):
            rebuilt.add(rec, source="t", partition=0, offset=offset, now_ms=much_later_ms)
        again = rebuilt.flush()
        assert contribution_rows(again) == contribution_rows(flush)
        assert again.ranges == flush.ranges
        state = live.watermark_state()
        since_flush = []
