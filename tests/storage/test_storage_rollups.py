"""The rollup cascade on real chDB: totals and percentiles agree at 10s, 1m, 1h and 1d."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import pytest
from storage_builders import FlushBuilder, exact_quantile, random_events
from storage_store import Store, make_store

from schemas.latency_buckets import RELATIVE_ERROR, bucket_value, quantile_from_counts
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator
from stream_app.storage.client import StorageClient
from stream_app.storage.results import WindowTotals
from stream_app.storage.settings import StorageSettings

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
RESOLUTIONS = ("10s", "1m", "1h", "1d")
QUANTILES = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)


@dataclass
class Written:
    store: Store
    events: list[WireEvent]
    pools: list[str]
    start_ms: int
    end_ms: int

    def expected(self, bucket_ms: int) -> dict[tuple[str, str, int], Accumulator]:
        """Python totals per (pool, region, start of the bucket_ms-long period)."""
        groups: dict[tuple[str, str, int], Accumulator] = defaultdict(Accumulator)
        for ev in self.events:
            groups[(ev.pool, ev.region, ev.ts_ms - ev.ts_ms % bucket_ms)].add(ev)
        return groups

    def expected_by_scope(self) -> dict[tuple[str, str], Accumulator]:
        groups: dict[tuple[str, str], Accumulator] = defaultdict(Accumulator)
        for ev in self.events:
            groups[(ev.pool, ev.region)].add(ev)
        return groups


@pytest.fixture(scope="module")
def written(_shared_database: StorageSettings, storage_client: StorageClient) -> Written:
    """3 hours of random traffic around midnight UTC (day and hour boundaries), 16 flushes."""
    store = make_store(_shared_database, storage_client)
    tag = uuid.uuid4().hex[:8]
    pools = [f"alpha{tag}", f"beta{tag}"]
    midnight_ms = int(time.time()) // 86_400 * DAY_MS
    start_ms = midnight_ms - 90 * 60_000
    end_ms = start_ms + 3 * HOUR_MS
    rng = random.Random(20_260_101)
    events = random_events(
        rng,
        4_000,
        start_ms=start_ms,
        span_ms=end_ms - start_ms,
        pools=pools,
        regions=["eu", "us", "ap"],
    )
    builder = FlushBuilder(source=f"kafka-{tag}")
    flushes = 16
    chunk = len(events) // flushes
    for i in range(flushes):  # each flush holds partial sums of many windows, as in production
        store.sink.write(builder.flush(events[i * chunk : (i + 1) * chunk]))
    return Written(store, events[: flushes * chunk], pools, start_ms, end_ms)


def assert_totals_equal(stored: WindowTotals, expected: Accumulator, context: object) -> None:
    assert stored.requests == expected.requests, context
    assert stored.successes == expected.successes, context
    assert stored.outcomes == {str(k): v for k, v in expected.outcomes.items()}, context
    assert stored.status_classes == expected.status_classes, context
    assert stored.latency_buckets == expected.latency_buckets, context
    assert stored.bytes_in == expected.bytes_in, context
    assert stored.bytes_out == expected.bytes_out, context
    assert stored.attempts == expected.attempts, context
    assert stored.latency_sum_ms == pytest.approx(expected.latency_sum_ms, rel=1e-9), context
    assert stored.latency_min_ms == expected.latency_min_ms, context
    assert stored.latency_max_ms == expected.latency_max_ms, context


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_range_totals_are_equal_at_every_resolution(written: Written, resolution: str) -> None:
    expected = written.expected_by_scope()
    # Whole days: the 1d rows start at midnight, before start_ms.
    start, end = written.start_ms - DAY_MS, written.end_ms + DAY_MS
    totals = [
        t
        for pool in written.pools
        for t in written.store.queries.range_totals(start, end, resolution, pool=pool)
    ]
    assert {(t.pool, t.region) for t in totals} == set(expected)
    for t in totals:
        acc = expected[(t.pool, t.region)]
        assert_totals_equal(t, acc, (resolution, t.pool, t.region))
        assert t.distinct_proxies == len(acc.proxies)


@pytest.mark.parametrize(
    ("resolution", "bucket_ms"),
    [("10s", 10_000), ("1m", 60_000), ("1h", HOUR_MS), ("1d", DAY_MS)],
)
def test_window_totals_per_period(written: Written, resolution: str, bucket_ms: int) -> None:
    expected = written.expected(bucket_ms)
    pool = written.pools[0]
    rows = written.store.queries.window_totals(
        written.start_ms - DAY_MS, written.end_ms + DAY_MS, resolution, pool=pool
    )
    ours = {k: v for k, v in expected.items() if k[0] == pool}
    assert {(t.pool, t.region, t.window_start_ms) for t in rows} == set(ours)
    assert all(t.window_s == bucket_ms // 1000 for t in rows)
    for t in rows:
        assert_totals_equal(t, ours[(t.pool, t.region, t.window_start_ms)], t.window_start_ms)
    if resolution == "1d":
        assert len({t.window_start_ms for t in rows}) == 2  # the traffic spans midnight


def test_ten_second_windows_add_up_to_the_hours(written: Written) -> None:
    q = written.store.queries
    pool = written.pools[1]
    tens = q.window_totals(written.start_ms, written.end_ms, "10s", pool=pool)
    hours = q.window_totals(written.start_ms - HOUR_MS, written.end_ms, "1h", pool=pool)
    summed: dict[tuple[str, int], Accumulator] = defaultdict(Accumulator)
    for t in tens:
        acc = Accumulator()
        acc.requests, acc.successes = t.requests, t.successes
        acc.latency_buckets = dict(t.latency_buckets)
        acc.outcomes = dict(t.outcomes)
        acc.bytes_in = t.bytes_in
        summed[(t.region, t.window_start_ms - t.window_start_ms % HOUR_MS)].merge(acc)
    assert {(h.region, h.window_start_ms) for h in hours} == set(summed)
    for h in hours:
        acc = summed[(h.region, h.window_start_ms)]
        assert (h.requests, h.successes, h.bytes_in) == (acc.requests, acc.successes, acc.bytes_in)
        assert h.latency_buckets == acc.latency_buckets
        assert h.outcomes == acc.outcomes


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_percentiles_from_sql_match_python_and_raw_latencies(
    written: Written, resolution: str
) -> None:
    expected = written.expected_by_scope()
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for ev in written.events:
        latencies[(ev.pool, ev.region)].append(ev.latency_ms)
    start, end = written.start_ms - DAY_MS, written.end_ms + DAY_MS
    rows = [
        row
        for pool in written.pools
        for row in written.store.queries.percentiles(
            start, end, QUANTILES, resolution, pool=pool, by_window=False
        )
    ]
    assert {(r.pool, r.region) for r in rows} == set(expected)
    for row in rows:
        scope = (row.pool, row.region)
        assert row.window_start_ms is None
        assert row.requests == expected[scope].requests
        for q in QUANTILES:
            sql_value = row.quantiles[q]
            python_value = quantile_from_counts(expected[scope].latency_buckets, q)
            assert sql_value is not None
            assert python_value is not None
            # Same bucket; the engine's pow may differ from libm's in the last bit.
            assert sql_value == pytest.approx(python_value, rel=1e-12), (scope, q)
            exact = exact_quantile(latencies[scope], q)
            assert abs(sql_value - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9), (scope, q)


def test_hourly_and_fleet_wide_percentiles(written: Written) -> None:
    q = written.store.queries
    hourly = written.expected(HOUR_MS)
    pool = written.pools[0]
    rows = q.percentiles(written.start_ms - HOUR_MS, written.end_ms, (0.5, 0.99), "1h", pool=pool)
    assert {(r.region, r.window_start_ms) for r in rows} == {
        (region, start) for (p, region, start) in hourly if p == pool
    }
    for r in rows:
        assert r.window_start_ms is not None
        buckets = hourly[(pool, r.region or "", r.window_start_ms)].latency_buckets
        for quantile in (0.5, 0.99):
            assert r.quantiles[quantile] == pytest.approx(
                quantile_from_counts(buckets, quantile), rel=1e-12
            )

    # Fleet-wide: every pool and region in the range (the shared database may hold other
    # tests' pools too; the reference is everything stored in the range).
    fleet = q.percentiles(
        written.start_ms, written.end_ms, (0.95,), "10s", by_window=False, by_scope=False
    )
    assert len(fleet) == 1
    assert (fleet[0].pool, fleet[0].region, fleet[0].window_start_ms) == (None, None, None)
    everything = q.range_totals(written.start_ms, written.end_ms, "10s")
    fleet_buckets: dict[int, int] = defaultdict(int)
    for t in everything:
        for key, count in t.latency_buckets.items():
            fleet_buckets[key] += count
    assert fleet[0].requests == sum(t.requests for t in everything) >= len(written.events)
    assert fleet[0].quantiles[0.95] == pytest.approx(
        quantile_from_counts(fleet_buckets, 0.95), rel=1e-12
    )


def test_sql_bucket_values_match_python(written: Written) -> None:
    rows = written.store.client.rows(
        "SELECT number, pwm_bucket_value(toUInt16(number)) FROM numbers(1101)"
    )
    for key, value in rows:
        assert value == pytest.approx(bucket_value(int(key)), rel=1e-14, abs=0.0)
    assert rows[0][1] == 0.0
    assert not any(math.isnan(v) for _, v in rows)
