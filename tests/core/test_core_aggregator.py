"""WindowAggregator behaviour on hand-made streams: edges, bounds, restore, flush contract."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from core_events import T0_MS, event

from schemas.events import Outcome
from stream_app.core.accumulator import Accumulator
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import ScopeKey
from stream_app.core.watermark import WatermarkState

S = 1_000
P1 = "0123456789abcdef"
P2 = "fedcba9876543210"
P3 = "aaaaaaaaaaaaaaaa"


def aggregator(**overrides: int | None) -> WindowAggregator:
    values: dict[str, int | None] = {
        "window_s": 10,
        "grace_ms": 5 * S,
        "proxy_window_s": 60,
        "idle_timeout_ms": 10 * S,
    }
    values.update(overrides)
    return WindowAggregator(AggregatorConfig.model_validate(values))


class Feed:
    """Adds records at consecutive offsets of one partition."""

    def __init__(self, agg: WindowAggregator, partition: int = 0) -> None:
        self.agg = agg
        self.partition = partition
        self.offset = 0

    def __call__(self, *events: object, now_ms: int) -> None:
        self.agg.add(
            list(events),  # type: ignore[arg-type]
            source="requests",
            partition=self.partition,
            offset=self.offset,
            now_ms=now_ms,
        )
        self.offset += 1


def test_lateness_edge_is_the_watermark_reaching_the_window_end() -> None:
    agg = aggregator()
    feed = Feed(agg)
    feed(event(T0_MS + 15 * S), now_ms=T0_MS + 15 * S)  # watermark = T0 + 10 s
    assert agg.watermark_ms == T0_MS + 10 * S
    last_of_first = event(T0_MS + 10 * S - 1)
    first_of_second = event(T0_MS + 10 * S)
    feed(last_of_first, first_of_second, now_ms=T0_MS + 15 * S)
    late = agg.drain_late()
    assert [x.event for x in late] == [last_of_first]
    assert (late[0].source, late[0].partition, late[0].offset) == ("requests", 0, 1)
    assert late[0].window_start_ms == T0_MS
    assert late[0].watermark_ms == T0_MS + 10 * S
    assert agg.drain_late() == []
    stats = agg.stats
    assert (stats.events_accepted, stats.late_events) == (2, 1)


def test_events_of_one_record_are_not_late_relative_to_each_other() -> None:
    agg = aggregator()
    Feed(agg)(event(T0_MS + 60 * S), event(T0_MS + 1), now_ms=T0_MS + 60 * S)
    assert agg.stats.late_events == 0
    closed = agg.close_due(T0_MS + 60 * S)
    assert [(a.window_start_ms, a.requests) for a in closed] == [(T0_MS, 1)]


def test_windows_close_on_the_wall_clock_when_the_stream_goes_idle() -> None:
    agg = aggregator()
    Feed(agg)(event(T0_MS + 3 * S), now_ms=T0_MS + 3 * S)
    # Watermark T0 - 2 s: the window [T0, T0+10s) waits for events or for the idle rule.
    assert agg.close_due(T0_MS + 13 * S) == []
    assert agg.close_due(T0_MS + 25 * S - 1) == []  # watermark -2 + (25 - 3 - 10) s - 1 ms
    closed = agg.close_due(T0_MS + 25 * S)
    assert [(a.window_start_ms, a.requests) for a in closed] == [(T0_MS, 1)]
    assert agg.stats.open_windows == 0


def test_windows_of_keys_that_went_quiet_close_with_the_others() -> None:
    agg = aggregator()
    feed = Feed(agg)
    feed(event(T0_MS + 1 * S, pool="quiet"), event(T0_MS + 2 * S), now_ms=T0_MS + 2 * S)
    for t in range(3, 30):
        feed(event(T0_MS + t * S), now_ms=T0_MS + t * S)
    closed = agg.close_due(T0_MS + 29 * S)
    assert [(a.window_start_ms - T0_MS, a.scope.pool) for a in closed] == [
        (0, "pool-a"),
        (0, "quiet"),
        (10 * S, "pool-a"),
    ]


def test_close_before_flush_keeps_the_deltas_for_the_next_flush() -> None:
    agg = aggregator()
    feed = Feed(agg)
    feed(event(T0_MS + 1 * S, latency_ms=10.0), now_ms=T0_MS + 1 * S)
    first = agg.flush()
    feed(event(T0_MS + 2 * S, latency_ms=30.0), now_ms=T0_MS + 2 * S)
    feed(event(T0_MS + 20 * S), now_ms=T0_MS + 20 * S)  # closes [T0, T0+10s)
    closed = agg.close_due(T0_MS + 20 * S)  # not flushed yet: folded here, kept
    assert [(a.window_start_ms, a.requests) for a in closed] == [(T0_MS, 2)]
    second = agg.flush()
    total = Accumulator()
    for flush in (first, second):
        for c in flush.scopes:
            if c.window_start_ms == T0_MS:
                total.merge(c.acc)
    assert total.requests == 2
    assert total.latency_sum_ms == closed[0].latency.sum_ms == 40.0
    assert [(r.first_offset, r.last_offset) for r in second.ranges] == [(1, 2)]
    assert agg.flush().empty


def test_events_without_a_proxy_count_only_at_pool_level() -> None:
    agg = aggregator(window_s=10, proxy_window_s=10)
    feed = Feed(agg)
    feed(event(T0_MS, proxy_id=None), event(T0_MS + 1, proxy_id=P1), now_ms=T0_MS)
    flush = agg.flush()
    assert [(c.scope, c.acc.requests) for c in flush.scopes] == [(ScopeKey("pool-a", "eu"), 2)]
    assert [(c.scope, c.acc.requests) for c in flush.proxies] == [(ScopeKey("pool-a", "eu", P1), 1)]
    feed(event(T0_MS + 60 * S), now_ms=T0_MS + 60 * S)
    closed = agg.close_due_windows(T0_MS + 60 * S)
    assert [(a.scope.proxy_id, a.requests, a.distinct_proxies) for a in closed.scopes] == [
        (None, 2, 1)
    ]
    assert [(a.scope.proxy_id, a.requests, a.window_s) for a in closed.proxies] == [(P1, 1, 10)]


def test_proxy_windows_span_several_pool_windows() -> None:
    agg = aggregator(window_s=10, proxy_window_s=30)
    feed = Feed(agg)
    for t in (1, 11, 21, 31):
        feed(event(T0_MS + t * S, outcome=Outcome.TIMEOUT, status_code=None), now_ms=T0_MS + t * S)
    feed(event(T0_MS + 40 * S), now_ms=T0_MS + 40 * S)
    closed = agg.close_due_windows(T0_MS + 40 * S)
    assert [a.window_start_ms - T0_MS for a in closed.scopes] == [0, 10 * S, 20 * S]
    assert [(a.window_start_ms, a.requests) for a in closed.proxies] == [(T0_MS, 3)]
    proxy = closed.proxies[0]
    assert proxy.window_end_ms - proxy.window_start_ms == 30 * S
    assert proxy.outcome_rate(Outcome.TIMEOUT) == 1.0
    assert proxy.status_classes == {"none": 3}


def test_proxy_bound_counts_overflow_and_keeps_pool_level_whole() -> None:
    agg = aggregator(max_proxies_per_window=2)
    feed = Feed(agg)
    feed(event(T0_MS, proxy_id=P1), event(T0_MS, proxy_id=P2), now_ms=T0_MS)
    agg.flush()
    feed(event(T0_MS + 1, proxy_id=P3), event(T0_MS + 2, proxy_id=P3), now_ms=T0_MS)
    feed(event(T0_MS + 3, proxy_id=P1), now_ms=T0_MS)  # known proxies still count
    flush = agg.flush()
    assert sorted((c.scope.proxy_id, c.acc.requests) for c in flush.proxies) == [(P1, 1)]
    stats = agg.stats
    assert stats.proxy_overflow == 2
    assert stats.open_proxy_windows == 2
    feed(event(T0_MS + 120 * S), now_ms=T0_MS + 120 * S)
    closed = agg.close_due_windows(T0_MS + 120 * S)
    assert [(a.requests, a.distinct_proxies) for a in closed.scopes] == [(5, 3)]
    assert sorted((a.scope.proxy_id, a.requests) for a in closed.proxies) == [(P1, 2), (P2, 1)]


def test_late_side_output_is_bounded_and_counts_what_it_drops() -> None:
    agg = aggregator(max_late_events=2)
    feed = Feed(agg)
    feed(event(T0_MS + 30 * S), now_ms=T0_MS + 30 * S)
    feed(*(event(T0_MS + i) for i in range(5)), now_ms=T0_MS + 30 * S)
    assert len(agg.drain_late()) == 2
    assert agg.stats.late_dropped_overflow == 3
    assert agg.stats.late_events == 5
    feed(event(T0_MS + 1), now_ms=T0_MS + 30 * S)
    assert [x.event.ts_ms for x in agg.drain_late()] == [T0_MS + 1]


def test_late_events_are_reported_on_the_window_holding_the_watermark() -> None:
    agg = aggregator()
    feed = Feed(agg)
    feed(event(T0_MS + 1 * S), event(T0_MS + 1 * S, region="us"), now_ms=T0_MS + 1 * S)
    feed(event(T0_MS + 16 * S), now_ms=T0_MS + 16 * S)  # watermark 11 s: window 0 closes
    closed = agg.close_due(T0_MS + 16 * S)
    assert [(a.scope.region, a.late_events) for a in closed] == [("eu", 0), ("us", 0)]
    agg.flush()
    feed(event(T0_MS + 2 * S), event(T0_MS + 3 * S, region="us"), now_ms=T0_MS + 16 * S)
    assert agg.stats.late_events == 2
    # Both go on their scope's 10..20 s window, which holds the watermark; "us" has no traffic
    # there yet, so its row carries only the late count. Storage gets them with the flush.
    flush = agg.flush()
    rows = sorted(
        (c.scope.region, c.window_start_ms - T0_MS, c.acc.requests, c.acc.late_events)
        for c in flush.scopes
    )
    assert rows == [("eu", 10 * S, 0, 1), ("us", 10 * S, 0, 1)]
    feed(event(T0_MS + 17 * S, region="us"), now_ms=T0_MS + 17 * S)
    feed(event(T0_MS + 40 * S), now_ms=T0_MS + 40 * S)
    closed = agg.close_due(T0_MS + 40 * S)
    assert [
        (a.scope.region, a.window_start_ms - T0_MS, a.requests, a.late_events) for a in closed
    ] == [
        ("eu", 10 * S, 1, 1),
        ("us", 10 * S, 1, 1),
    ]


def test_a_scope_with_only_late_events_gets_an_aggregate_without_requests() -> None:
    agg = aggregator()
    feed = Feed(agg)
    feed(event(T0_MS + 30 * S), now_ms=T0_MS + 30 * S)  # watermark 25 s
    feed(event(T0_MS + 1 * S, pool="quiet"), now_ms=T0_MS + 30 * S)
    feed(event(T0_MS + 60 * S), now_ms=T0_MS + 60 * S)
    closed = agg.close_due(T0_MS + 60 * S)
    (quiet,) = [a for a in closed if a.scope.pool == "quiet"]
    assert (quiet.window_start_ms - T0_MS, quiet.requests, quiet.late_events) == (20 * S, 0, 1)
    assert quiet.success_rate is None
    assert quiet.latency.quantile(0.5) is None


def test_a_clock_far_ahead_is_counted_and_cannot_push_the_watermark() -> None:
    agg = aggregator(max_future_skew_ms=60 * S)
    feed = Feed(agg)
    feed(event(T0_MS + 3_600 * S, pool="skewed"), now_ms=T0_MS)
    assert agg.watermark_ms == T0_MS + 60 * S - 5 * S
    assert agg.stats.clock_skew_records == 1
    feed(event(T0_MS + 56 * S), now_ms=T0_MS)  # not late: the watermark did not jump an hour
    assert agg.stats.late_events == 0
    assert agg.stats.events_accepted == 2


def test_flush_reports_offset_ranges_per_partition() -> None:
    agg = aggregator()
    for partition, offset in [(0, 7), (1, 3), (0, 5), (0, 9), (1, 4)]:
        agg.add([event(T0_MS)], source="requests", partition=partition, offset=offset, now_ms=T0_MS)
    agg.add([], source="other", partition=0, offset=11, now_ms=T0_MS)  # a record with no events
    flush = agg.flush()
    ranges = sorted((r.source, r.partition, r.first_offset, r.last_offset) for r in flush.ranges)
    assert ranges == [("other", 0, 11, 11), ("requests", 0, 5, 9), ("requests", 1, 3, 4)]
    assert flush.dedup_token() == "other/0/11-11;requests/0/5-9;requests/1/3-4"
    empty = agg.flush()
    assert empty.empty
    assert empty.ranges == []


def test_restored_windows_count_in_the_close_but_are_not_flushed_again() -> None:
    agg = aggregator()
    stored = Accumulator()
    for ms in (10.0, 20.0):
        stored.add(event(T0_MS + 1 * S, latency_ms=ms))
    agg.restore_open_window(ScopeKey("pool-a", "eu"), T0_MS, 10, stored)
    stored_proxy = Accumulator()
    stored_proxy.add(event(T0_MS + 1 * S, latency_ms=10.0))
    agg.restore_open_window(ScopeKey("pool-a", "eu", P1), T0_MS, 60, stored_proxy)
    agg.restore_watermark(
        WatermarkState(watermark_ms=T0_MS + 2 * S, max_event_ms=T0_MS + 7 * S), T0_MS + 7 * S
    )
    assert agg.stats.watermark_ms == T0_MS + 2 * S
    feed = Feed(agg)
    feed(event(T0_MS + 8 * S, latency_ms=30.0), now_ms=T0_MS + 8 * S)
    flush = agg.flush()
    assert [c.acc.requests for c in flush.scopes] == [1]
    assert [c.acc.requests for c in flush.proxies] == [1]
    feed(event(T0_MS + 70 * S), now_ms=T0_MS + 70 * S)
    closed = agg.close_due_windows(T0_MS + 70 * S)
    assert [(a.requests, a.latency.sum_ms) for a in closed.scopes[:1]] == [(3, 60.0)]
    assert [(a.requests, a.latency.sum_ms) for a in closed.proxies] == [(2, 40.0)]
    assert stored.requests == 2  # the caller's accumulator is not taken over


@pytest.mark.parametrize(
    ("scope", "window_start_ms", "window_s"),
    [
        (ScopeKey("pool-a", "eu"), T0_MS, 60),
        (ScopeKey("pool-a", "eu", P1), T0_MS, 10),
        (ScopeKey("pool-a", "eu"), T0_MS + 1, 10),
    ],
)
def test_restore_refuses_windows_of_another_shape(
    scope: ScopeKey, window_start_ms: int, window_s: int
) -> None:
    with pytest.raises(ValueError, match="cannot restore"):
        aggregator().restore_open_window(scope, window_start_ms, window_s, Accumulator())


def test_watermark_state_carries_over_to_a_new_worker() -> None:
    agg = aggregator()
    Feed(agg)(event(T0_MS + 12 * S), now_ms=T0_MS + 12 * S)
    state = agg.watermark_state()
    successor = aggregator()
    successor.restore_watermark(state, now_ms=T0_MS + 100 * S)
    Feed(successor)(event(T0_MS + 5 * S), now_ms=T0_MS + 100 * S)
    assert successor.stats.late_events == 0  # watermark 7 s: window 0..10 s still open
    Feed(successor)(event(T0_MS + 1 * S), now_ms=T0_MS + 100 * S)
    assert successor.stats.late_events == 0
    successor.defer_idle(T0_MS + 200 * S)
    assert successor.close_due(T0_MS + 205 * S) == []
    assert [a.requests for a in successor.close_due(T0_MS + 214 * S)] == [2]


@dataclass(frozen=True)
class ServiceSettings:
    window_s: int = 5
    grace_ms: int = 1_000
    proxy_window_s: int = 30
    max_proxies_per_window: int = 7
    idle_timeout_ms: int = 2_000
    flush_interval_ms: int = 1_000  # not the aggregator's: ignored


def test_from_settings_takes_the_fields_it_knows() -> None:
    agg = WindowAggregator.from_settings(ServiceSettings())
    assert agg.config == AggregatorConfig(
        window_s=5,
        grace_ms=1_000,
        proxy_window_s=30,
        max_proxies_per_window=7,
        idle_timeout_ms=2_000,
    )


def test_misaligned_proxy_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of window_s"):
        AggregatorConfig(window_s=10, proxy_window_s=15)
    with pytest.raises(ValueError, match="multiple of window_s"):
        WindowAggregator.from_settings(ServiceSettings(window_s=60, proxy_window_s=10))
