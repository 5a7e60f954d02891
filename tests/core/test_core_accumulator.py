"""Accumulators: the inlined hot loop counts exactly what Accumulator.add counts; merging is
associative and commutative; copies are independent."""

from __future__ import annotations

import math
from collections import defaultdict

from core_events import T0_MS, acc_fields, assert_same_acc, edge_latencies, event, wire_events
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.latency_buckets import GAMMA, MAX_KEY, MIN_LATENCY_MS, bucket_key
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator
from stream_app.core.ingest import PendingDeltas, accumulate_record

WINDOW_MS = 10_000


@st.composite
def records(draw: st.DrawFn) -> list[WireEvent]:
    return [
        draw(wire_events(T0_MS + draw(st.integers(0, 3 * WINDOW_MS))))
        for _ in range(draw(st.integers(0, 25)))
    ]


def added(events: list[WireEvent]) -> Accumulator:
    acc = Accumulator()
    for ev in events:
        acc.add(ev)
    return acc


@settings(max_examples=120, deadline=None)
@given(st.lists(records(), max_size=4))
def test_hot_loop_counts_what_accumulator_add_counts(batch: list[list[WireEvent]]) -> None:
    pending: PendingDeltas = {}
    for record in batch:
        assert accumulate_record(record, pending, WINDOW_MS, None) == []
    groups: dict[tuple[int, str, str, str | None], list[WireEvent]] = defaultdict(list)
    for ev in (ev for record in batch for ev in record):
        start = ev.ts_ms - ev.ts_ms % WINDOW_MS
        groups[(start, ev.pool, ev.region, ev.proxy_id)].append(ev)
    got = {
        (*key, proxy_id): acc
        for key, by_proxy in pending.items()
        for proxy_id, acc in by_proxy.items()
    }
    assert set(got) == set(groups)
    for key, events in groups.items():
        expected = added(events)
        # A pending delta gets its proxy set when materialised (accumulator.new_delta).
        assert got[key].proxies == set()
        expected.proxies = set()
        assert acc_fields(got[key]) == acc_fields(expected)
        assert got[key].latency_sum_ms == expected.latency_sum_ms  # same order: same sum


@settings(deadline=None)
@given(st.lists(edge_latencies, min_size=1, max_size=30))
def test_hot_loop_buckets_are_the_shared_bucket_keys(values: list[float]) -> None:
    pending: PendingDeltas = {}
    accumulate_record([event(T0_MS, latency_ms=v) for v in values], pending, WINDOW_MS, None)
    (by_proxy,) = pending.values()
    (acc,) = by_proxy.values()
    expected: dict[int, int] = {}
    for v in values:
        expected[bucket_key(v)] = expected.get(bucket_key(v), 0) + 1
    assert acc.latency_buckets == expected


def test_hot_loop_buckets_match_at_every_bucket_edge() -> None:
    # Each bucket bound and the floats right around it: where a different float operation
    # order than bucket_key's would put a latency into the neighbouring bucket.
    values = []
    for k in range(MAX_KEY + 2):
        x = MIN_LATENCY_MS * GAMMA**k
        for _ in range(3):
            x = math.nextafter(x, 0.0)
        for _ in range(7):
            values.append(x)
            x = math.nextafter(x, math.inf)
    pending: PendingDeltas = {}
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        accumulate_record([event(T0_MS, latency_ms=v) for v in chunk], pending, WINDOW_MS, None)
    (by_proxy,) = pending.values()
    (acc,) = by_proxy.values()
    expected: dict[int, int] = {}
    for v in values:
        expected[bucket_key(v)] = expected.get(bucket_key(v), 0) + 1
    assert acc.latency_buckets == expected


def test_hot_loop_returns_late_events_with_their_window() -> None:
    pending: PendingDeltas = {}
    early, edge, fresh = event(T0_MS + 1), event(T0_MS + WINDOW_MS - 1), event(T0_MS + WINDOW_MS)
    late = accumulate_record([early, fresh, edge], pending, WINDOW_MS, T0_MS + WINDOW_MS)
    assert late == [(T0_MS, early), (T0_MS, edge)]
    assert [key[0] for key in pending] == [T0_MS + WINDOW_MS]


@settings(max_examples=60, deadline=None)
@given(records(), records(), records())
def test_merge_is_associative_and_commutative(
    a: list[WireEvent], b: list[WireEvent], c: list[WireEvent]
) -> None:
    def merged(*parts: list[WireEvent]) -> Accumulator:
        acc = Accumulator()
        for part in parts:
            acc.merge(added(part))
        return acc

    left = added(a)
    left.merge(merged(b, c))  # a + (b + c)
    right = merged(a, b)
    right.merge(added(c))  # (a + b) + c
    whole = added(a + b + c)
    assert_same_acc(left, whole)
    assert_same_acc(right, whole)
    assert_same_acc(merged(c, a, b), whole)


@settings(max_examples=60, deadline=None)
@given(records(), records())
def test_copies_are_independent(a: list[WireEvent], b: list[WireEvent]) -> None:
    original = added(a)
    before = acc_fields(original)
    copy = original.copy()
    assert acc_fields(copy) == before
    copy.merge(added(b))
    for ev in b:
        copy.add(ev)
    assert acc_fields(original) == before
