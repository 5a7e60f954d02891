"""Event builders and Hypothesis strategies shared by the core tests."""

from __future__ import annotations

import itertools
import math

from core_reference import Expected
from hypothesis import strategies as st

from schemas.aggregates import WindowAggregate
from schemas.events import MAX_LATENCY_MS, Outcome
from schemas.latency_buckets import GAMMA, MIN_LATENCY_MS
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator

T0_MS = 1_699_999_200_000  # 2023-11-14 22:00 UTC: aligned to every window size used here
POOLS = ("pool-a", "pool-b")
REGIONS = ("eu", "us")
PROXIES = (None, "0123456789abcdef", "fedcba9876543210", "aaaaaaaaaaaaaaaa", "b" * 32)

_ids = itertools.count()


def event(
    ts_ms: int,
    *,
    pool: str = "pool-a",
    region: str = "eu",
    proxy_id: str | None = "0123456789abcdef",
    outcome: Outcome = Outcome.SUCCESS,
    latency_ms: float = 100.0,
    status_code: int | None = 200,
    bytes_in: int = 1000,
    bytes_out: int = 100,
    attempts: int = 1,
) -> WireEvent:
    return WireEvent(
        event_id=f"e{next(_ids)}",
        ts_ms=ts_ms,
        pool=pool,
        region=region,
        outcome=outcome,
        latency_ms=latency_ms,
        source_host="host-1",
        proxy_id=proxy_id,
        status_code=status_code,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        attempts=attempts,
    )


# Latencies on and around bucket edges, the bucket-0 threshold and the clamp, plus ordinary ones.
edge_latencies = st.sampled_from(
    [0.0, MIN_LATENCY_MS, MIN_LATENCY_MS * 1.0000001, 0.005, 1.0, 250.0, MAX_LATENCY_MS]
    + [MIN_LATENCY_MS * GAMMA**k for k in (1, 2, 50, 500, 1099, 1100, 1101)]
    + [math.nextafter(MIN_LATENCY_MS * GAMMA**k, math.inf) for k in (3, 300)]
)
latencies = st.one_of(
    edge_latencies,
    st.floats(min_value=0.0, max_value=MAX_LATENCY_MS, allow_nan=False),
    st.floats(min_value=1.0, max_value=5_000.0),
)


@st.composite
def wire_events(draw: st.DrawFn, ts_ms: int = T0_MS) -> WireEvent:
    outcome = draw(st.sampled_from(list(Outcome)))
    return event(
        ts_ms,
        pool=draw(st.sampled_from(POOLS)),
        region=draw(st.sampled_from(REGIONS)),
        proxy_id=draw(st.sampled_from(PROXIES)),
        outcome=outcome,
        latency_ms=draw(latencies),
        status_code=draw(st.sampled_from([None, 101, 200, 204, 302, 404, 429, 502, 599])),
        bytes_in=draw(st.integers(0, 10**9)),
        bytes_out=draw(st.integers(0, 10**6)),
        attempts=draw(st.integers(1, 5)),
    )


def outcome_names(agg: WindowAggregate) -> dict[str, int]:
    return {str(k): v for k, v in agg.outcomes.items()}


def assert_matches(agg: WindowAggregate, exp: Expected) -> None:
    """An emitted aggregate equals the brute-force one (the latency sum up to rounding)."""
    assert agg.requests == exp.requests
    assert agg.successes == exp.successes
    assert outcome_names(agg) == exp.outcomes
    assert dict(agg.status_classes) == exp.status_classes
    assert agg.latency.buckets == exp.buckets
    assert agg.latency.count == exp.requests
    assert math.isclose(agg.latency.sum_ms, exp.sum_ms, rel_tol=1e-9, abs_tol=1e-6)
    assert agg.latency.min_ms == exp.min_ms
    assert agg.latency.max_ms == exp.max_ms
    assert agg.bytes_in == exp.bytes_in
    assert agg.bytes_out == exp.bytes_out
    assert agg.attempts == exp.attempts
    assert agg.distinct_proxies == exp.distinct_proxies
    assert agg.late_events == exp.late_events


def acc_fields(acc: Accumulator) -> dict[str, object]:
    """Everything in an accumulator except the latency sum, for exact comparison."""
    return {
        "requests": acc.requests,
        "successes": acc.successes,
        "outcomes": {str(k): v for k, v in acc.outcomes.items() if v},
        "status_classes": {k: v for k, v in acc.status_classes.items() if v},
        "latency_buckets": {k: v for k, v in acc.latency_buckets.items() if v},
        "latency_min_ms": acc.latency_min_ms,
        "latency_max_ms": acc.latency_max_ms,
        "bytes_in": acc.bytes_in,
        "bytes_out": acc.bytes_out,
        "attempts": acc.attempts,
        "proxies": set(acc.proxies),
        "late_events": acc.late_events,
    }


def assert_same_acc(actual: Accumulator, expected: Accumulator) -> None:
    assert acc_fields(actual) == acc_fields(expected)
    assert math.isclose(actual.latency_sum_ms, expected.latency_sum_ms, rel_tol=1e-9, abs_tol=1e-6)
