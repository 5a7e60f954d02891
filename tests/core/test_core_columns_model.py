"""Columnar records (schema v2) against the v1 path: identical aggregates, bit for bit.

The v1 path (:meth:`WindowAggregator.add`, itself held to the brute-force model) is the oracle.
A second aggregator gets the same records, each at random as a v2 envelope decoded from its bytes
(:meth:`WindowAggregator.add_columns`) or as v1 events, so both paths and their mixes are covered.
Every flush, every closed window (latency sums included, compared exactly), the late and refused
events and the statistics must be identical: late events, events refused for clock skew or age,
several windows and proxy windows, bucket edges, events without a proxy id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from core_events import T0_MS, edge_latencies, wire_events
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from producer.columnar import encode_columnar
from schemas.column_batch import decode_any, decode_columns
from schemas.latency_buckets import GAMMA, MAX_KEY, MIN_LATENCY_MS, bucket_key
from schemas.wire import WireEvent
from stream_app.core import columns
from stream_app.core.accumulator import Accumulator
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.bucket_keys import bucket_edges, bucket_keys
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import Flush


@dataclass(frozen=True)
class Scenario:
    config: AggregatorConfig
    ops: list[tuple[str, int, list[WireEvent], bool, bool]]
    """(kind, now_ms, record, as v2, with packed columns)"""


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    window_s = draw(st.sampled_from([1, 2, 5]))
    grace_ms = draw(st.sampled_from([0, 300, 2_000]))
    config = AggregatorConfig(
        window_s=window_s,
        proxy_window_s=window_s * draw(st.sampled_from([1, 3])),
        grace_ms=grace_ms,
        idle_timeout_ms=draw(st.sampled_from([0, 700, 3_000])),
        max_future_skew_ms=draw(st.sampled_from([None, 2_000])),
        max_clock_skew_ms=draw(st.sampled_from([None, 1_000])),
        max_event_age_ms=draw(st.sampled_from([None, 4_000])),
    )
    wall = T0_MS + draw(st.integers(0, 9_999))
    ops: list[tuple[str, int, list[WireEvent], bool, bool]] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["add"] * 6 + ["flush", "close"]))
        wall += draw(st.sampled_from([0, 100, 500, 1_000, 7_000]))
        record: list[WireEvent] = []
        if kind == "add":
            sent = wall - draw(st.sampled_from([0, 500, 1_000]))
            size = draw(st.integers(1, 12))
            record = [
                draw(wire_events(sent + draw(st.integers(-(grace_ms + 6_000), 3_000))))
                for _ in range(size)
            ]
        ops.append((kind, wall, record, draw(st.booleans()), draw(st.booleans())))
    return Scenario(config, ops)


def _acc(acc: Accumulator) -> tuple[object, ...]:
    return (
        acc.requests,
        acc.successes,
        {str(k): v for k, v in acc.outcomes.items()},
        dict(acc.status_classes),
        dict(acc.latency_buckets),
        acc.latency_sum_ms,
        acc.latency_min_ms,
        acc.latency_max_ms,
        acc.bytes_in,
        acc.bytes_out,
        acc.attempts,
        set(acc.proxies),
        acc.late_events,
    )


def _rows(flush: Flush) -> dict[object, tuple[object, ...]]:
    rows = {(c.window_start_ms, c.scope): _acc(c.acc) for c in [*flush.scopes, *flush.proxies]}
    assert len(rows) == len(flush.scopes) + len(flush.proxies)
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_columnar_path_matches_v1_exactly(s: Scenario) -> None:
    _matches_v1_exactly(s)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_columnar_path_matches_v1_exactly_when_groups_are_sorted(s: Scenario) -> None:
    """The same with the sort-based grouping and counting that large key spaces use (the
    tables of small key spaces switched off)."""
    dense = columns._DENSE_KEYS
    columns._DENSE_KEYS = 0
    try:
        _matches_v1_exactly(s)
    finally:
        columns._DENSE_KEYS = dense


def _matches_v1_exactly(s: Scenario) -> None:
    v1 = WindowAggregator(s.config)
    v2 = WindowAggregator(s.config)
    for offset, (kind, now_ms, record, columnar, packed) in enumerate(s.ops):
        if kind == "add":
            record_ms = now_ms - 200
            at = {"source": "t", "partition": 0, "offset": offset, "now_ms": now_ms}
            v1.add(record, record_ms=record_ms, **at)  # type: ignore[arg-type]
            if columnar:
                data = encode_columnar(
                    record,
                    batch_id=f"b{offset}",
                    source_host="host-1",
                    pool="pool-a",
                    sent_ms=1,
                    packed=packed,
                )
                v2.add_columns(decode_columns(data), record_ms=record_ms, **at)  # type: ignore[arg-type]
            else:
                v2.add(record, record_ms=record_ms, **at)  # type: ignore[arg-type]
        elif kind == "flush":
            a, b = v1.flush(), v2.flush()
            assert _rows(a) == _rows(b)
            assert a.ranges == b.ranges
        else:
            a_closed, b_closed = v1.close_due_windows(now_ms), v2.close_due_windows(now_ms)
            assert [x.model_dump() for x in a_closed.scopes] == [
                x.model_dump() for x in b_closed.scopes
            ]
            assert [x.model_dump() for x in a_closed.proxies] == [
                x.model_dump() for x in b_closed.proxies
            ]
        assert v1.stats == v2.stats
    end = s.ops[-1][1] + 86_400_000
    assert [x.model_dump() for x in v1.close_due(end)] == [
        x.model_dump() for x in v2.close_due(end)
    ]
    assert _rows(v1.flush()) == _rows(v2.flush())
    late = v1.drain_late()
    assert late == v2.drain_late()
    refused = v1.drain_out_of_range()
    assert refused == v2.drain_out_of_range()
    assert v1.stats == v2.stats
    event(f"late events: {min(len(late), 3)}+")
    event(f"refused events: {min(len(refused), 3)}+")
    event(f"v2 records: {min(sum(1 for op in s.ops if op[0] == 'add' and op[3]), 3)}+")


def test_bulk_bucket_keys_equal_bucket_key_at_every_edge() -> None:
    edges = bucket_edges()
    assert len(edges) == MAX_KEY
    probes = np.concatenate(
        [
            edges,
            np.nextafter(edges, 0.0),
            np.nextafter(edges, np.inf),
            np.array(
                [0.0, MIN_LATENCY_MS, 1e12, *[MIN_LATENCY_MS * GAMMA**k for k in range(1200)]]
            ),
        ]
    )
    assert bucket_keys(probes).tolist() == [bucket_key(float(x)) for x in probes]


@given(st.lists(edge_latencies | st.floats(0.0, 1e9), min_size=1, max_size=50))
def test_bulk_bucket_keys_on_random_latencies(latencies: list[float]) -> None:
    got = bucket_keys(np.array(latencies, dtype=np.float64)).tolist()
    assert got == [bucket_key(x) for x in latencies]


@given(st.lists(wire_events(), min_size=1, max_size=20), st.booleans())
def test_v2_round_trip(events: list[WireEvent], packed: bool) -> None:
    data = encode_columnar(
        events, batch_id="b", source_host="host-1", pool="pool-a", sent_ms=5, packed=packed
    )
    decoded = decode_any(data)
    assert not isinstance(decoded, WireEvent)
    assert decoded.events() == events  # type: ignore[union-attr]
    assert math.isfinite(float(decoded.latency_ms.sum()))  # type: ignore[union-attr]
