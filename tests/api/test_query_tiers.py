"""Tier and step of a series: the range and the tiers' retention decide; never over 1,500 points."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.storage.query_tiers import Retention, choose_tier
from stream_app.storage.tables import Resolution

NOW_MS = 1_800_000_000_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RETENTION = Retention.default()


@pytest.mark.parametrize(
    ("span_ms", "resolution", "step_s"),
    [
        (HOUR_MS, Resolution.WINDOW, 10),
        (DAY_MS, Resolution.MINUTE, 60),
        (30 * DAY_MS, Resolution.MINUTE, 1_800),
        (90 * DAY_MS, Resolution.HOUR, 7_200),
        (365 * DAY_MS, Resolution.HOUR, 21_600),
        (730 * DAY_MS, Resolution.DAY, 86_400),  # 1h rows are gone after 400 days
    ],
)
def test_tier_and_step_follow_the_range(span_ms: int, resolution: Resolution, step_s: int) -> None:
    choice = choose_tier(NOW_MS - span_ms, NOW_MS, now_ms=NOW_MS, retention=RETENTION)
    assert (choice.resolution, choice.step_s) == (resolution, step_s)
    assert choice.points <= 1_500


def test_retention_moves_an_old_short_range_to_a_coarser_tier() -> None:
    start = NOW_MS - 200 * DAY_MS  # one hour, 200 days ago: 10 s and 1 min rows have expired
    choice = choose_tier(start, start + HOUR_MS, now_ms=NOW_MS, retention=RETENTION)
    assert choice.resolution is Resolution.HOUR
    assert choice.step_s == 3_600


def test_a_longer_stream_window_sets_the_finest_step() -> None:
    choice = choose_tier(NOW_MS - HOUR_MS, NOW_MS, now_ms=NOW_MS, retention=RETENTION, window_s=30)
    assert (choice.resolution, choice.step_s) == (Resolution.WINDOW, 30)


@given(
    span_s=st.integers(min_value=1, max_value=10 * 366 * 86_400),
    offset_s=st.integers(min_value=0, max_value=6 * 366 * 86_400),
    max_points=st.integers(min_value=2, max_value=5_000),
    min_step_s=st.sampled_from([0, 10, 60, 3_600]),
)
def test_bounded_aligned_and_covering(
    span_s: int, offset_s: int, max_points: int, min_step_s: int
) -> None:
    end = NOW_MS - offset_s * 1000
    start = end - span_s * 1000
    choice = choose_tier(
        start,
        end,
        now_ms=NOW_MS,
        retention=RETENTION,
        max_points=max_points,
        min_step_s=min_step_s,
    )
    assert choice.points <= max_points
    assert choice.start_ms <= start
    assert choice.end_ms >= end
    assert choice.start_ms % (choice.step_s * 1000) == 0
    assert choice.step_s >= min_step_s
    row_s = 10 if choice.resolution is Resolution.WINDOW else {
        Resolution.MINUTE: 60, Resolution.HOUR: 3_600, Resolution.DAY: 86_400
    }[choice.resolution]  # fmt: skip
    assert choice.step_s % row_s == 0
