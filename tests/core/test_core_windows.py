"""Tumbling window assignment and closing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.windows import WindowSpec


@settings(deadline=None)
@given(st.integers(1, 3_600), st.integers(0, 4 * 10**12))
def test_every_event_time_falls_in_exactly_its_window(window_s: int, ts_ms: int) -> None:
    spec = WindowSpec(window_s)
    start = spec.start_ms(ts_ms)
    assert start <= ts_ms < spec.end_ms(start)
    assert spec.is_aligned(start)
    assert spec.end_ms(start) - start == window_s * 1000
    # The next window starts where this one ends.
    assert spec.start_ms(spec.end_ms(start)) == spec.end_ms(start)


def test_window_edges() -> None:
    spec = WindowSpec(10, grace_ms=5_000)
    assert spec.start_ms(9_999) == 0
    assert spec.start_ms(10_000) == 10_000
    assert spec.end_ms(10_000) == 20_000
    assert spec.closing_event_ms(10_000) == 25_000
    assert not spec.is_aligned(10_001)
    assert not spec.is_closed(10_000, None)
    assert not spec.is_closed(10_000, 19_999)
    assert spec.is_closed(10_000, 20_000)


@pytest.mark.parametrize(
    ("window_s", "grace_ms"), [(0, 0), (-1, 0), (10, -1), (1.5, 0), (True, 0), (10, 0.5)]
)
def test_invalid_specs_are_refused(window_s: object, grace_ms: object) -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        WindowSpec(window_s, grace_ms)  # type: ignore[arg-type]
