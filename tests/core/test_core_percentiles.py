"""Percentiles read from closed windows are within 1% of the exact lower-rank percentile."""

from __future__ import annotations

import math
import random

import pytest
from core_events import T0_MS, event
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.latency_buckets import MAX_KEY, MIN_LATENCY_MS, bucket_value
from stream_app.core.accumulator import Accumulator
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import ScopeKey

QUANTILES = (0.5, 0.9, 0.95, 0.99)
LOWEST_MS = MIN_LATENCY_MS * 1.0001  # bucket 0 holds everything below: no relative bound there
HIGHEST_MS = bucket_value(MAX_KEY - 1)  # above, keys are clamped


def draw_latencies(kind: str, seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    draws = {
        "lognormal": lambda: rng.lognormvariate(math.log(120.0), 1.2),
        "uniform": lambda: rng.uniform(0.02, 30_000.0),
        "exponential": lambda: rng.expovariate(1 / 250.0),
        "bimodal": lambda: rng.gauss(40.0, 5.0) if rng.random() < 0.8 else rng.gauss(2_000, 300),
        "heavy_tail": lambda: 5.0 * rng.paretovariate(1.1),
        "few_values": lambda: rng.choice([12.5, 80.0, 80.0, 950.0]),
        "sub_ms": lambda: rng.uniform(0.011, 0.9),
    }
    return [min(max(draws[kind](), LOWEST_MS), HIGHEST_MS) for _ in range(count)]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        ["lognormal", "uniform", "exponential", "bimodal", "heavy_tail", "few_values", "sub_ms"]
    ),
    st.integers(0, 2**32),
    st.integers(1, 3_000),
)
@example("lognormal", 7, 3_000)
@example("heavy_tail", 11, 3_000)
@example("bimodal", 13, 2_500)
def test_window_percentiles_are_within_one_percent(kind: str, seed: int, count: int) -> None:
    values = draw_latencies(kind, seed, count)
    agg = WindowAggregator(AggregatorConfig(window_s=10, grace_ms=0))
    # Spread over several records and flushes, as a live window would be.
    for start in range(0, count, 500):
        chunk = values[start : start + 500]
        agg.add(
            [event(T0_MS + i % 10_000, latency_ms=v) for i, v in enumerate(chunk)],
            source="requests",
            partition=0,
            offset=start,
            now_ms=T0_MS,
        )
        agg.flush()
    (closed,) = agg.close_due(T0_MS + 10**9)
    ordered = sorted(values)
    for q in QUANTILES:
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        estimate = closed.latency.quantile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= 0.01 * exact, (q, estimate, exact)


@pytest.mark.parametrize("q", QUANTILES)
def test_an_empty_window_has_no_percentile(q: float) -> None:
    agg = WindowAggregator(AggregatorConfig(window_s=10, grace_ms=0))
    agg.restore_open_window(ScopeKey("p", "r"), T0_MS, 10, Accumulator())
    agg.add([event(T0_MS + 20_000)], source="s", partition=0, offset=0, now_ms=T0_MS)
    (empty, _) = agg.close_due(T0_MS + 10**9)
    assert empty.requests == 0
    assert empty.latency.quantile(q) is None
    assert empty.success_rate is None
