"""Generated events are internally consistent and follow the configured mixes."""

from __future__ import annotations

from collections import Counter

from simulator_stats import ORIGIN_MS, binomial_ok, median, small_scenario

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.simulator import FleetSimulator
from stream_app.simulator.outcomes import DEFAULT_ERROR_MIX, RETRIED_STATUSES

NO_STATUS = {
    Outcome.TIMEOUT,
    Outcome.CONNECTION_ERROR,
    Outcome.TLS_ERROR,
    Outcome.PROXY_ERROR,
    Outcome.NO_PROXY_AVAILABLE,
    Outcome.CANCELLED,
    Outcome.INTERNAL,
}
EVERY_ERROR = {o: 1.0 for o in Outcome if o is not Outcome.SUCCESS}


def _events(seconds: int, **sections: object) -> tuple[FleetSimulator, list[WireEvent]]:
    sim = FleetSimulator(small_scenario(**sections), seed=21, origin_ms=ORIGIN_MS)  # type: ignore[arg-type]
    return sim, list(sim.events_between(ORIGIN_MS, ORIGIN_MS + seconds * 1000))


def _check_consistent(ev: WireEvent, timeout_ms: float, max_attempts: int) -> None:
    outcome, status = ev.outcome, ev.status_code
    if outcome is Outcome.SUCCESS:
        assert status is not None
        assert 200 <= status < 400
    elif outcome is Outcome.HTTP_ERROR:
        assert status is not None
        assert 400 <= status < 600
        assert status not in (407, 429)
    elif outcome is Outcome.PROXY_AUTH_ERROR:
        assert status == 407
    elif outcome is Outcome.RATE_LIMITED:
        assert status == 429
    else:
        assert outcome in NO_STATUS, ev
        assert status is None, ev
    assert (ev.proxy_id is None) == (outcome is Outcome.NO_PROXY_AVAILABLE)
    if ev.attempts > 1:
        assert outcome is Outcome.SUCCESS or status in RETRIED_STATUSES, ev
    if outcome is Outcome.HTTP_ERROR and status in RETRIED_STATUSES:
        assert ev.attempts == max_attempts
    if outcome is Outcome.TIMEOUT:
        assert timeout_ms <= ev.latency_ms <= timeout_ms * 1.02
    else:
        assert 0 < ev.latency_ms <= timeout_ms
    if outcome in (Outcome.CONNECTION_ERROR, Outcome.TLS_ERROR, Outcome.NO_PROXY_AVAILABLE):
        assert ev.bytes_out == 0
    if outcome in (Outcome.TIMEOUT, Outcome.CONNECTION_ERROR, Outcome.TLS_ERROR):
        assert ev.bytes_in == 0
    if outcome is Outcome.SUCCESS and status not in (204, 304):
        assert ev.bytes_in > 0
        assert ev.bytes_out > 0


def test_status_codes_attempts_latency_and_bytes_match_the_outcome() -> None:
    # Every error kind with a high error rate, so each one shows up thousands of times.
    pools = [
        {"name": "alpha", "rate_per_s": 3000, "error_rate": 0.6, "error_mix": EVERY_ERROR,
         "timeout_ms": 20_000},
        {"name": "beta", "rate_per_s": 1000, "error_rate": 0.02},
    ]  # fmt: skip
    _, events = _events(8, fleet={"pools": pools, "max_attempts": 4, "retry_fraction": 0.1})
    outcomes = Counter(ev.outcome for ev in events)
    assert set(outcomes) == set(Outcome)
    for ev in events:
        _check_consistent(ev, 20_000.0 if ev.pool == "alpha" else 30_000.0, 4)
    statuses = Counter(ev.status_code for ev in events if ev.outcome is Outcome.HTTP_ERROR)
    assert {400, 403, 404, 500, 502, 503, 504} <= set(statuses)
    assert any(ev.attempts == 2 for ev in events if ev.outcome is Outcome.SUCCESS)
    domains = Counter(ev.target_domain for ev in events)
    assert len(domains) == 6
    assert None not in domains


def test_default_error_mix_is_respected() -> None:
    _, events = _events(20)
    errors = [ev for ev in events if ev.outcome is not Outcome.SUCCESS]
    total_weight = sum(DEFAULT_ERROR_MIX.values())
    counts = Counter(ev.outcome for ev in errors)
    assert set(counts) == set(DEFAULT_ERROR_MIX)
    for outcome, weight in DEFAULT_ERROR_MIX.items():
        assert binomial_ok(counts[outcome], len(errors), weight / total_weight), outcome


def test_success_latency_median_follows_region_and_pool_and_has_a_heavy_tail() -> None:
    _sim, events = _events(20, fleet={"health": {"bad_fraction": 0.0}})
    for region, base_ms in (("eu", 100.0), ("us", 50.0)):
        latencies = [
            ev.latency_ms
            for ev in events
            if ev.region == region and ev.outcome is Outcome.SUCCESS and ev.attempts == 1
        ]
        # Per-proxy spread (sigma 0.15 over 50 proxies) moves the median by a few percent.
        assert abs(median(latencies) / base_ms - 1.0) < 0.08, region
    successes = sorted(ev.latency_ms for ev in events if ev.outcome is Outcome.SUCCESS)
    p50, p999 = successes[len(successes) // 2], successes[int(len(successes) * 0.999)]
    # Without the Pareto tail, log-normal(0.45) x spread gives p99.9/p50 ~ 4.8.
    assert p999 / p50 > 8.0
    no_tail = FleetSimulator(
        small_scenario(fleet={"latency": {"tail_fraction": 0.0}, "health": {"bad_fraction": 0}}),
        seed=21,
        origin_ms=ORIGIN_MS,
    )
    plain = sorted(
        ev.latency_ms
        for ev in no_tail.events_between(ORIGIN_MS, ORIGIN_MS + 20_000)
        if ev.outcome is Outcome.SUCCESS and ev.attempts == 1
    )
    assert plain[int(len(plain) * 0.999)] / plain[len(plain) // 2] < 6.0


def test_bad_proxies_fail_more_and_are_slower_while_the_scope_keeps_its_error_rate() -> None:
    health = {"bad_fraction": 0.1, "bad_error_factor": 5.0, "bad_latency_factor": 3.0}
    sim, events = _events(30, fleet={"health": health})
    scope = [ev for ev in events if ev.pool == "alpha" and ev.region == "eu"]
    bad = sim.bad_proxy_ids("alpha", "eu")
    assert len(bad) == 5  # floor(0.1 x 50)
    bad_events = [ev for ev in scope if ev.proxy_id in bad]
    good_events = [ev for ev in scope if ev.proxy_id not in bad]
    bad_errors = sum(ev.outcome is not Outcome.SUCCESS for ev in bad_events)
    good_errors = sum(ev.outcome is not Outcome.SUCCESS for ev in good_events)
    # Pool error rate 0.05: bad proxies 0.25, good ones (0.05 x 50 - 0.25 x 5) / 45.
    assert binomial_ok(bad_errors, len(bad_events), 0.25)
    assert binomial_ok(good_errors, len(good_events), (0.05 * 50 - 0.25 * 5) / 45)
    assert binomial_ok(bad_errors + good_errors, len(scope), 0.05)

    def success_median(evs: list[WireEvent]) -> float:
        return median([e.latency_ms for e in evs if e.outcome is Outcome.SUCCESS])

    ratio = success_median(bad_events) / success_median(good_events)
    assert 2.4 < ratio < 3.75, ratio
