"""Delivery disorder: bounded jitter and a fraction of delayed events, same events as in order."""

from __future__ import annotations

import itertools

from simulator_stats import ORIGIN_MS, binomial_ok, small_scenario

from stream_app.simulator import FleetSimulator

T0 = ORIGIN_MS


def test_jitter_is_bounded_and_the_stream_is_in_delivery_order() -> None:
    sim = FleetSimulator(small_scenario(delivery={"jitter_ms": 400}), seed=6, origin_ms=T0)
    records = list(sim.records(T0 + 5_000, T0 + 15_000))
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(records))
    assert all(T0 + 5_000 <= r[0] < T0 + 15_000 for r in records)
    lateness = [r[0] - r[1] for r in records]
    assert min(lateness) == 0
    assert max(lateness) == 400
    out_of_order = sum(1 for a, b in itertools.pairwise(records) if b[1] < a[1])
    assert out_of_order > len(records) // 4


def test_delayed_fraction_and_delay_range() -> None:
    delivery = {"delayed_fraction": 0.05, "delay_min_ms": 3_000, "delay_max_ms": 6_000}
    sim = FleetSimulator(small_scenario(delivery=delivery), seed=6, origin_ms=T0)
    records = list(sim.records(T0 + 10_000, T0 + 30_000))
    delayed = [r[0] - r[1] for r in records if r[0] != r[1]]
    assert binomial_ok(len(delayed), len(records), 0.05)
    assert min(delayed) >= 3_000
    assert max(delayed) <= 6_000
    assert max(delayed) - min(delayed) > 2_500


def test_disorder_reorders_the_same_events() -> None:
    plain = FleetSimulator(small_scenario(), seed=6, origin_ms=T0)
    delivery = {"jitter_ms": 250, "delayed_fraction": 0.02, "delay_min_ms": 1_000}
    shuffled = FleetSimulator(
        small_scenario(delivery={**delivery, "delay_max_ms": 2_000}), seed=6, origin_ms=T0
    )
    # Everything with event time in [5 s, 10 s) is delivered within [5 s, 12.25 s).
    expected = {ev.event_id: ev for ev in plain.events_between(T0 + 5_000, T0 + 10_000)}
    got = {
        ev.event_id: ev
        for ev in shuffled.events_between(T0 + 5_000, T0 + 12_250)
        if T0 + 5_000 <= ev.ts_ms < T0 + 10_000
    }
    assert got == expected
    event_times = [ev.ts_ms for ev in shuffled.events_between(T0 + 5_000, T0 + 10_000)]
    assert event_times != sorted(event_times)


def test_a_fleet_start_drops_earlier_events_consistently() -> None:
    delivery = {"jitter_ms": 300, "delayed_fraction": 0.05, "delay_min_ms": 500}
    sim = FleetSimulator(
        small_scenario(delivery={**delivery, "delay_max_ms": 1_500}), seed=6, origin_ms=T0
    )
    start = T0 + 4_321
    whole = list(sim.events_between(start, start + 6_000, first_ts_ms=start))
    assert min(ev.ts_ms for ev in whole) >= start
    parts = [
        *sim.events_between(start, start + 2_500, first_ts_ms=start),
        *sim.events_between(start + 2_500, start + 6_000, first_ts_ms=start),
    ]
    assert parts == whole
    unrestricted = list(sim.events_between(start, start + 6_000))
    assert [ev for ev in unrestricted if ev.ts_ms >= start] == whole
    assert len(unrestricted) > len(whole)
