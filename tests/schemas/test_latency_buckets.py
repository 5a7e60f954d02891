"""The shared latency bucket definition: error bound and quantile semantics."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.latency_buckets import (
    MAX_KEY,
    MIN_LATENCY_MS,
    RELATIVE_ERROR,
    bucket_key,
    bucket_value,
    quantile_from_counts,
    sql_key_expr,
)

latencies = st.floats(min_value=MIN_LATENCY_MS * 1.0001, max_value=bucket_value(MAX_KEY - 1))


@given(latencies)
def test_representative_is_within_the_relative_error(latency_ms: float) -> None:
    value = bucket_value(bucket_key(latency_ms))
    assert abs(value - latency_ms) <= RELATIVE_ERROR * latency_ms * (1 + 1e-9)


@given(latencies, latencies)
def test_keys_are_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert bucket_key(lo) <= bucket_key(hi)


def test_edges() -> None:
    assert RELATIVE_ERROR < 0.01
    assert bucket_key(0.0) == 0
    assert bucket_key(MIN_LATENCY_MS) == 0
    assert bucket_value(0) == 0.0
    assert bucket_key(1e12) == MAX_KEY
    assert bucket_key(MIN_LATENCY_MS * 1.000001) == 1


@given(st.lists(latencies, min_size=1, max_size=400), st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]))
def test_quantile_matches_the_lower_rank_exact_value(values: list[float], q: float) -> None:
    counts: dict[int, int] = {}
    for v in values:
        counts[bucket_key(v)] = counts.get(bucket_key(v), 0) + 1
    exact = sorted(values)[math.floor(q * (len(values) - 1))]
    got = quantile_from_counts(counts, q)
    assert got is not None
    assert abs(got - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9)


def test_quantile_of_nothing_is_none_and_bad_q_is_refused() -> None:
    assert quantile_from_counts({}, 0.5) is None
    with pytest.raises(ValueError, match="quantile"):
        quantile_from_counts({1: 1}, 1.5)


def test_sql_expression_names_the_column() -> None:
    expr = sql_key_expr("latency_ms")
    assert "log(latency_ms / 0.01)" in expr
    assert str(MAX_KEY) in expr
