"""Event time against record time: one host's clock cannot make other hosts' events late.

The scenario of the issue that found it: one valid event stamped a year ahead used to move its
partition's watermark to the future-skew cap, and the next good events of every host on that
partition were judged late. Now the event is refused as ``clock_skew`` (and named per host),
and nothing a record holds moves the watermark past the record's own time.
"""

from __future__ import annotations

import msgspec
from core_events import T0_MS, event

from schemas.rules import PipelineHealthConfig
from schemas.wire import WireEvent
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.core.record_time import RecordTimeBounds
from stream_app.core.rules.pipeline import PipelineHealth, PipelineStatus, SkewTracker

S = 1_000
YEAR_MS = 365 * 86_400 * S


def bounded(**overrides: int | None) -> WindowAggregator:
    values: dict[str, int | None] = {
        "window_s": 10,
        "grace_ms": 5 * S,
        "idle_timeout_ms": 10 * S,
        "max_clock_skew_ms": 60 * S,
        "max_event_age_ms": 3_600 * S,
    }
    values.update(overrides)
    return WindowAggregator(AggregatorConfig(**values))


def skewed(ts_ms: int, host: str = "host-skewed") -> WireEvent:
    return msgspec.structs.replace(event(ts_ms), source_host=host)


def test_an_event_a_year_ahead_is_refused_and_other_hosts_are_not_late() -> None:
    agg = bounded()
    now = T0_MS + 30 * S
    agg.add([event(T0_MS + 29 * S)], source="t", partition=0, offset=0, now_ms=now, record_ms=now)
    ahead = skewed(now + YEAR_MS)
    agg.add([ahead], source="t", partition=0, offset=1, now_ms=now, record_ms=now)
    # 500 good events of other hosts, each a little older than the last watermark would allow
    # had the skewed event counted.
    for i in range(500):
        ts = now - 1 * S + i
        agg.add([event(ts)], source="t", partition=0, offset=2 + i, now_ms=now, record_ms=now + i)

    refused = agg.drain_out_of_range()
    assert [r.event for r in refused] == [ahead]
    assert refused[0].kind == "clock_skew"
    assert "host-skewed" in refused[0].reason
    assert "ahead of its record time" in refused[0].reason
    assert agg.drain_late() == []
    assert agg.stats.late_events == 0
    assert agg.stats.events_accepted == 501
    assert agg.stats.out_of_range_events == 1
    assert agg.stats.clock_skew_by_host == {"host-skewed": 1}
    assert agg.watermark_ms is not None
    assert agg.watermark_ms <= now + 500 - 5 * S


def test_an_event_a_little_ahead_is_counted_but_cannot_move_the_watermark_past_its_record() -> None:
    agg = bounded()
    record_ms = T0_MS + 30 * S
    agg.add(
        [skewed(record_ms + 40 * S)],
        source="t",
        partition=0,
        offset=0,
        now_ms=record_ms,
        record_ms=record_ms,
    )
    assert agg.drain_out_of_range() == []
    assert agg.watermark_ms == record_ms - 5 * S  # capped at the record time, less grace
    # An on-time event of another host, 4 s old, is not late.
    agg.add(
        [event(record_ms - 4 * S)], source="t", partition=0, offset=1, now_ms=record_ms,
        record_ms=record_ms,
    )  # fmt: skip
    assert agg.stats.late_events == 0
    closed = agg.close_due(record_ms)
    assert closed == []  # nothing due yet: the skewed event's window is far ahead


def test_events_too_far_behind_their_record_are_refused_as_too_old() -> None:
    agg = bounded(max_event_age_ms=60 * S)
    record_ms = T0_MS + 3_600 * S
    old = event(record_ms - 61 * S)
    fine = event(record_ms - 59 * S)
    agg.add([old, fine], source="t", partition=3, offset=9, now_ms=record_ms, record_ms=record_ms)
    (refused,) = agg.drain_out_of_range()
    assert refused.event == old
    assert refused.kind == "too_old"
    assert (refused.partition, refused.offset) == (3, 9)
    assert "61000 ms behind" in refused.reason
    assert agg.stats.events_accepted == 1
    assert agg.stats.clock_skew_by_host == {}  # too old is not clock skew of a host


def test_without_a_record_time_the_arrival_bounds_the_events() -> None:
    agg = bounded()
    now = T0_MS
    agg.add([event(now + 61 * S)], source="t", partition=0, offset=0, now_ms=now)
    assert [r.kind for r in agg.drain_out_of_range()] == ["clock_skew"]


def test_a_record_entirely_within_bounds_is_not_copied() -> None:
    bounds = RecordTimeBounds(max_clock_skew_ms=10, max_event_age_ms=10)
    events = [event(T0_MS), event(T0_MS + 5)]
    kept, refused = bounds.split(events, T0_MS, T0_MS + 5)
    assert kept is events
    assert refused == []
    kept, refused = RecordTimeBounds(None, None).split(events, 0, T0_MS + 5)
    assert kept is events


def test_unbounded_aggregator_keeps_the_old_behaviour() -> None:
    agg = WindowAggregator(AggregatorConfig(window_s=10, grace_ms=0, max_future_skew_ms=None))
    agg.add([event(T0_MS + YEAR_MS)], source="t", partition=0, offset=0, now_ms=T0_MS)
    assert agg.drain_out_of_range() == []
    assert agg.stats.events_accepted == 1


def test_the_skew_tracker_names_hosts_whose_count_grew_lately() -> None:
    tracker = SkewTracker(recent_ms=60 * S)
    assert tracker.update({}, 0) == frozenset()
    assert tracker.update({"h1": 3}, 1 * S) == {"h1"}
    assert tracker.update({"h1": 3, "h2": 1}, 30 * S) == {"h1", "h2"}
    assert tracker.update({"h1": 3, "h2": 1}, 62 * S) == {"h2"}  # h1 did not grow for 61 s
    assert tracker.update({"h1": 3, "h2": 1}, 91 * S) == frozenset()


def test_clock_skew_fires_the_pipeline_alert_naming_the_host_without_holding_rules() -> None:
    health = PipelineHealth()
    config = PipelineHealthConfig()
    health.report(PipelineStatus(watermark_ms=1_000 * S, skewed_hosts=frozenset({"host-9"})))
    reasons = health.assess(1_001 * S, config)
    assert len(reasons) == 1
    assert "host-9" in reasons[0]
    assert "clock skew" in reasons[0]
    assert not health.degraded  # per-scope rules keep evaluating: the data is on time
    restored = PipelineHealth.from_dict(health.to_dict())
    assert restored.reasons == health.reasons
    assert not restored.degraded
    assert PipelineStatus.from_dict(health.to_dict()["status"]).skewed_hosts == {"host-9"}
