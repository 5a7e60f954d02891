"""The watermark: event rule, idle rule, clock skew guard, restore."""

from __future__ import annotations

import pytest

from stream_app.core.watermark import Watermark, WatermarkState

S = 1_000  # one second in ms


def test_event_rule_holds_the_grace_back_and_never_moves_back() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    assert wm.value is None
    assert wm.advance(0) is None  # nothing seen: the idle rule has nothing to go on
    assert wm.observe(100 * S, now_ms=100 * S) == 95 * S
    assert wm.observe(90 * S, now_ms=100 * S) == 95 * S  # an older record: no move back
    assert wm.observe(103 * S, now_ms=101 * S) == 98 * S
    assert wm.max_event_ms == 103 * S


def test_idle_rule_follows_the_wall_clock_after_the_timeout() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    wm.observe(100 * S, now_ms=100 * S)
    assert wm.advance(105 * S) == 95 * S
    assert wm.advance(110 * S) == 95 * S  # exactly the timeout: not yet
    assert wm.advance(111 * S) == 96 * S
    # On a live stream this is now - grace - idle_timeout.
    assert wm.advance(200 * S) == 200 * S - 5 * S - 10 * S


def test_idle_rule_extrapolates_from_the_last_arrival_not_from_now() -> None:
    # A replayed backlog: event time an hour behind the wall clock.
    wall = 10_000 * S
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    wm.observe(wall - 3_600 * S, now_ms=wall)
    # A 30 s pause of the input moves the watermark 20 s, not an hour.
    assert wm.advance(wall + 30 * S) == wall - 3_600 * S - 5 * S + 20 * S


def test_events_newer_than_the_watermark_keep_the_stream_live() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    wm.observe(100 * S, now_ms=100 * S)
    # Out of order but newer than the watermark (95 s): activity, re-anchors the idle rule.
    wm.observe(97 * S, now_ms=108 * S)
    assert wm.advance(118 * S) == 95 * S
    assert wm.advance(119 * S) == 96 * S


def test_events_behind_the_watermark_do_not_count_as_activity() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    wm.observe(100 * S, now_ms=100 * S)
    assert wm.advance(130 * S) == 115 * S
    # Behind the watermark: not activity, although newer than the last max event time.
    assert wm.observe(112 * S, now_ms=130 * S) == 115 * S
    assert wm.max_event_ms == 112 * S
    assert wm.advance(131 * S) == 116 * S
    # Newer than the watermark: the idle rule restarts from here.
    assert wm.observe(125 * S, now_ms=131 * S) == 120 * S
    assert wm.advance(141 * S) == 120 * S
    assert wm.advance(142 * S) == 121 * S


def test_zero_idle_timeout_follows_the_wall_clock_at_once() -> None:
    wm = Watermark(grace_ms=0, idle_timeout_ms=0)
    wm.observe(100 * S, now_ms=100 * S)
    assert wm.advance(100 * S) == 100 * S
    assert wm.advance(100 * S + 1) == 100 * S + 1


def test_clock_skew_guard_caps_event_time_ahead_of_the_wall_clock() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S, max_future_skew_ms=60 * S)
    assert wm.observe(10_000 * S, now_ms=100 * S) == 160 * S - 5 * S
    assert wm.max_event_ms == 160 * S
    assert wm.skewed_records == 1
    unguarded = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S, max_future_skew_ms=None)
    assert unguarded.observe(10_000 * S, now_ms=100 * S) == 9_995 * S


def test_defer_idle_holds_the_idle_rule() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    wm.observe(100 * S, now_ms=100 * S)
    wm.defer_idle(150 * S)  # the consumer knows it is lagging
    assert wm.advance(160 * S) == 95 * S
    assert wm.advance(165 * S) == 100 * S


def test_state_round_trips_and_downtime_is_not_idleness() -> None:
    wm = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    wm.observe(100 * S, now_ms=100 * S)
    saved = WatermarkState.from_dict(wm.state().as_dict())
    assert saved == WatermarkState(watermark_ms=95 * S, max_event_ms=100 * S)

    restarted = Watermark(grace_ms=5 * S, idle_timeout_ms=10 * S)
    restarted.restore(saved, now_ms=400 * S)  # down for five minutes
    assert restarted.value == 95 * S
    assert restarted.advance(405 * S) == 95 * S
    assert restarted.advance(411 * S) == 96 * S
    # An older state never moves a watermark back.
    restarted.restore(WatermarkState(watermark_ms=1, max_event_ms=2), now_ms=411 * S)
    assert restarted.value == 96 * S
    assert restarted.max_event_ms == 100 * S


def test_restoring_an_empty_state_keeps_the_watermark_unset() -> None:
    wm = Watermark(grace_ms=0, idle_timeout_ms=0)
    wm.restore(WatermarkState(watermark_ms=None, max_event_ms=None), now_ms=5)
    assert wm.advance(10**9) is None


@pytest.mark.parametrize(
    "data",
    [
        {"watermark_ms": 1},
        {"watermark_ms": 1, "max_event_ms": 2, "extra": 3},
        {"watermark_ms": "1", "max_event_ms": 2},
        {"watermark_ms": 1.5, "max_event_ms": 2},
    ],
)
def test_malformed_state_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="watermark state"):
        WatermarkState.from_dict(data)


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Watermark(grace_ms=-1, idle_timeout_ms=0)
    with pytest.raises(ValueError, match="max_future_skew_ms"):
        Watermark(grace_ms=0, idle_timeout_ms=0, max_future_skew_ms=-1)
