"""Each incident kind changes the stream in its scope and time range, and nowhere else."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from simulator_stats import (
    ORIGIN_MS,
    binomial_ok,
    error_count,
    in_scope,
    in_time,
    median,
    poisson_ok,
    small_scenario,
)

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.simulator import FleetSimulator

T0 = ORIGIN_MS
START, END = T0 + 10_000, T0 + 20_000  # every incident below: at_s 10, duration_s 10
HORIZON = T0 + 30_000


@pytest.fixture(scope="module")
def calm() -> list[WireEvent]:
    """The test fleet without incidents (same seed as ``_run``)."""
    return _run()


def _run(*incidents: dict[str, Any], seed: int = 13) -> list[WireEvent]:
    sim = FleetSimulator(small_scenario(list(incidents)), seed=seed, origin_ms=T0)
    return list(sim.events_between(T0, HORIZON))


def _outside(events: list[WireEvent]) -> list[WireEvent]:
    return [ev for ev in events if not START <= ev.ts_ms < END]


def _incident(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "at_s": 10, "duration_s": 10, **fields}


def test_error_spike_raises_that_scopes_error_rate_only_during_the_spike(
    calm: list[WireEvent],
) -> None:
    mix = {"timeout": 3, "http_error": 1}
    events = _run(_incident("error_spike", pool="alpha", region="eu", error_rate=0.4, outcomes=mix))
    scope = in_scope(events, "alpha", "eu")
    during = in_time(scope, START, END)
    errors, total = error_count(during)
    assert total > 4_000
    assert binomial_ok(errors, total, 0.4)
    kinds = Counter(ev.outcome for ev in during if ev.outcome is not Outcome.SUCCESS)
    assert set(kinds) == {Outcome.TIMEOUT, Outcome.HTTP_ERROR}
    assert binomial_ok(kinds[Outcome.TIMEOUT], errors, 0.75)
    before_and_after = _outside(scope)
    assert binomial_ok(*error_count(before_and_after), 0.05)
    # The same pool in the other region, and the other pool, are untouched.
    assert in_scope(events, "alpha", "us") == in_scope(calm, "alpha", "us")
    assert in_scope(events, "beta") == in_scope(calm, "beta")
    # Before the spike the scope's own events are identical too (same random stream).
    assert in_time(scope, T0, START) == in_time(in_scope(calm, "alpha", "eu"), T0, START)


def test_pool_wide_error_spike_covers_every_region_of_the_pool() -> None:
    events = _run(_incident("error_spike", pool="beta", error_rate=0.3))
    for region in ("eu", "us"):
        during = in_time(in_scope(events, "beta", region), START, END)
        assert binomial_ok(*error_count(during), 0.3), region
    assert binomial_ok(*error_count(in_time(in_scope(events, "alpha"), START, END)), 0.05)


def test_latency_multiplier_triples_latency_in_its_region_and_window(calm: list[WireEvent]) -> None:
    events = _run(_incident("latency_multiplier", region="us", factor=3))
    # Same random draws, so the same events: only latencies differ, by exactly the factor.
    assert len(events) == len(calm)
    tripled = kept = 0
    for before, after in zip(calm, events, strict=True):
        assert before.event_id == after.event_id
        assert before.outcome == after.outcome
        changed = before.region == "us" and START <= before.ts_ms < END
        if changed and before.outcome is not Outcome.TIMEOUT:
            assert abs(after.latency_ms - 3 * before.latency_ms) < 1e-6 * after.latency_ms or (
                after.latency_ms == 30_000.0  # clamped at the pool's timeout
            )
            tripled += 1
        else:
            assert after.latency_ms == before.latency_ms
            kept += 1
    assert tripled > 5_000
    assert kept > 5_000
    us_during = [ev.latency_ms for ev in in_time(in_scope(events, region="us"), START, END)]
    us_outside = [ev.latency_ms for ev in _outside(in_scope(events, region="us"))]
    assert 2.85 < median(us_during) / median(us_outside) < 3.15


def test_silence_yields_no_events_for_that_scope_in_that_range(calm: list[WireEvent]) -> None:
    events = _run(_incident("silence", pool="alpha"))
    alpha = in_scope(events, "alpha")
    assert in_time(alpha, START, END) == []
    assert in_time(alpha, START - 1_000, START)
    assert in_time(alpha, END, END + 1_000)
    # 1,200 events/s: the stream runs up to the boundary and resumes right at it (to the ms).
    assert START - 50 <= max(ev.ts_ms for ev in in_time(alpha, T0, START)) < START
    assert END <= min(ev.ts_ms for ev in in_time(alpha, END, HORIZON)) < END + 50
    assert in_scope(events, "beta") == in_scope(calm, "beta")
    assert poisson_ok(len(in_time(alpha, END, HORIZON)), 1200 * 10)


def test_flap_alternates_down_and_up_every_period() -> None:
    events = _run(_incident("flap", pool="beta", region="us", period_s=2))
    scope = in_scope(events, "beta", "us")
    for phase in range(5):
        a, b = START + phase * 2_000, START + (phase + 1) * 2_000
        count = len(in_time(scope, a, b))
        if phase % 2 == 0:
            assert count == 0, phase
        else:
            assert poisson_ok(count, 400 * 2), phase
    assert poisson_ok(len(in_time(scope, END, HORIZON)), 400 * 10)


def test_flap_with_errors_fails_in_down_phases_only() -> None:
    events = _run(
        _incident("flap", pool="alpha", region="eu", period_s=2.5, effect="errors", error_rate=0.8)
    )
    scope = in_scope(events, "alpha", "eu")
    down = [ev for ev in in_time(scope, START, END) if (ev.ts_ms - START) // 2_500 % 2 == 0]
    up = [ev for ev in in_time(scope, START, END) if (ev.ts_ms - START) // 2_500 % 2 == 1]
    assert binomial_ok(*error_count(down), 0.8)
    assert binomial_ok(*error_count(up), 0.05)


def test_single_proxy_failure_fails_that_proxy_only() -> None:
    sim = FleetSimulator(
        small_scenario([_incident("proxy_failure", pool="alpha", region="us", proxy_index=3)]),
        seed=13,
        origin_ms=T0,
    )
    events = list(sim.events_between(T0, HORIZON))
    broken = sim.proxy_id("alpha", "us", 3)
    assert sim.failing_proxy_ids(0) == {broken}
    mine = [ev for ev in events if ev.proxy_id == broken]
    during = in_time(mine, START, END)
    assert len(during) > 100
    assert {ev.outcome for ev in during} == {Outcome.CONNECTION_ERROR, Outcome.TIMEOUT}
    assert binomial_ok(*error_count(_outside(mine)), 0.05, z=6)
    others = [ev for ev in in_time(in_scope(events, "alpha", "us"), START, END)]
    others = [ev for ev in others if ev.proxy_id != broken]
    assert binomial_ok(*error_count(others), 0.05)


def test_fraction_proxy_failure_picks_that_share_of_the_scopes_proxies() -> None:
    sim = FleetSimulator(
        small_scenario([_incident("proxy_failure", pool="beta", fraction=0.2, error_rate=0.5)]),
        seed=13,
        origin_ms=T0,
    )
    failing = sim.failing_proxy_ids(0)
    assert len(failing) == 20  # 10 of 50 in each of the two regions
    assert failing <= set(sim.proxy_ids("beta", "eu")) | set(sim.proxy_ids("beta", "us"))
    during = in_time(in_scope(list(sim.events_between(T0, HORIZON)), "beta"), START, END)
    hit = [ev for ev in during if ev.proxy_id in failing]
    assert binomial_ok(*error_count(hit), 0.5)
    assert binomial_ok(*error_count([ev for ev in during if ev.proxy_id not in failing]), 0.02)


def test_traffic_multiplier_scales_the_rate_of_its_scope() -> None:
    events = _run(_incident("traffic_multiplier", pool="beta", region="eu", factor=2.5))
    scope = in_scope(events, "beta", "eu")
    assert poisson_ok(len(in_time(scope, START, END)), 400 * 2.5 * 10)
    assert poisson_ok(len(_outside(scope)), 400 * 20)
    fleet_wide = _run(_incident("traffic_multiplier", factor=0.5))
    assert poisson_ok(len(in_time(fleet_wide, START, END)), 2000 * 0.5 * 10)


def test_overlapping_incidents_combine() -> None:
    events = _run(
        _incident("traffic_multiplier", pool="alpha", region="eu", factor=2),
        {**_incident("traffic_multiplier", region="eu", factor=1.5), "at_s": 15},
        _incident("error_spike", pool="alpha", region="eu", error_rate=0.2),
        {**_incident("error_spike", pool="alpha", error_rate=0.6), "duration_s": 2.5},
        {**_incident("silence", pool="alpha", region="eu"), "at_s": 18, "duration_s": 1},
    )
    scope = in_scope(events, "alpha", "eu")
    # Rates multiply: x2 from 10 s, x3 from 15 s; silent from 18 to 19 s.
    assert poisson_ok(len(in_time(scope, START, START + 5_000)), 600 * 2 * 5)
    assert poisson_ok(len(in_time(scope, START + 5_000, START + 8_000)), 600 * 3 * 3)
    assert in_time(scope, START + 8_000, START + 9_000) == []
    # The highest overlapping error rate applies.
    assert binomial_ok(*error_count(in_time(scope, START, START + 2_500)), 0.6)
    assert binomial_ok(*error_count(in_time(scope, START + 2_500, START + 8_000)), 0.2)


def test_a_large_failing_fraction_is_chosen_exactly() -> None:
    sim = FleetSimulator(
        small_scenario([_incident("proxy_failure", pool="alpha", region="eu", fraction=0.8)]),
        seed=13,
        origin_ms=T0,
    )
    failing = sim.failing_proxy_ids(0)
    assert len(failing) == 40
    assert failing <= set(sim.proxy_ids("alpha", "eu"))
    assert sim.failing_proxy_ids(1) == frozenset()
