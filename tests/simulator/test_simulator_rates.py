"""Traffic volume matches the configuration: pool rates, region shares, diurnal shape."""

from __future__ import annotations

import math
from collections import Counter

from simulator_stats import ORIGIN_MS, binomial_ok, error_count, poisson_ok, small_scenario

from stream_app.simulator import FleetSimulator

HOUR_MS = 3_600_000


def test_pool_and_region_rates_match_configuration() -> None:
    regions = [
        {"name": "eu", "base_latency_ms": 100, "traffic_share": 3},
        {"name": "us", "base_latency_ms": 50, "traffic_share": 1},
    ]
    sim = FleetSimulator(small_scenario(fleet={"regions": regions}), seed=9, origin_ms=ORIGIN_MS)
    seconds = 30
    events = list(sim.events_between(ORIGIN_MS, ORIGIN_MS + seconds * 1000))
    counts = Counter((ev.pool, ev.region) for ev in events)
    for pool, rate in (("alpha", 1200), ("beta", 800)):
        assert poisson_ok(counts[(pool, "eu")], rate * 0.75 * seconds), pool
        assert poisson_ok(counts[(pool, "us")], rate * 0.25 * seconds), pool
    for pool, p in (("alpha", 0.05), ("beta", 0.02)):
        errors, total = error_count(ev for ev in events if ev.pool == pool)
        assert binomial_ok(errors, total, p), pool
    # Arrivals are spread over the whole range, not bunched at slot starts.
    per_100ms = Counter((ev.ts_ms - ORIGIN_MS) // 100 for ev in events)
    assert len(per_100ms) == seconds * 10
    assert all(poisson_ok(n, 2000 * 0.1) for n in per_100ms.values())


def test_with_total_rate_scales_every_pool() -> None:
    scenario = small_scenario().with_total_rate(500)
    assert [p.rate_per_s for p in scenario.fleet.pools] == [300.0, 200.0]
    sim = FleetSimulator(scenario, seed=9, origin_ms=ORIGIN_MS)
    events = list(sim.events_between(ORIGIN_MS, ORIGIN_MS + 20_000))
    assert poisson_ok(len(events), 500 * 20)


def test_diurnal_shape_peaks_at_the_local_peak_hour() -> None:
    amplitude = 0.5
    regions = [{"name": "eu", "base_latency_ms": 100, "utc_offset_h": 2}]
    pools = [{"name": "alpha", "rate_per_s": 400}]
    scenario = small_scenario(
        fleet={"regions": regions, "pools": pools},
        diurnal={"amplitude": amplitude, "peak_hour_local": 14},
    )
    day_start = 1_750_032_000_000  # 2025-06-16 00:00 UTC
    assert day_start % (24 * HOUR_MS) == 0
    sim = FleetSimulator(scenario, seed=3, origin_ms=day_start)
    seconds = 20

    def count_at(utc_hour: float) -> int:
        start = day_start + int(utc_hour * HOUR_MS)
        return sum(1 for _ in sim.records(start, start + seconds * 1000))

    peak, trough, shoulder = count_at(12), count_at(0), count_at(6)  # local 14:00, 02:00, 08:00
    assert poisson_ok(peak, 400 * seconds * (1 + amplitude))
    assert poisson_ok(trough, 400 * seconds * (1 - amplitude))
    assert poisson_ok(shoulder, 400 * seconds * (1 + amplitude * math.cos(math.pi / 2)))
