"""The generator is a pure function of (scenario, seed, origin): reproducible and chunkable."""

from __future__ import annotations

import itertools

import pytest
from simulator_stats import ORIGIN_MS, in_scope, small_scenario

from producer.identity import ProxyIdHasher
from schemas.wire import WireBatch, decode_batch, encode_batch
from stream_app.simulator import FleetSimulator
from stream_app.simulator.fleet import MAX_PROXIES_PER_SCOPE, proxy_address, proxy_id_for

DISORDER = {
    "jitter_ms": 300,
    "delayed_fraction": 0.01,
    "delay_min_ms": 2_000,
    "delay_max_ms": 4_000,
}


def test_same_seed_same_events_and_other_seed_differs() -> None:
    scenario = small_scenario()
    a = list(
        FleetSimulator(scenario, seed=11, origin_ms=ORIGIN_MS).events_between(
            ORIGIN_MS, ORIGIN_MS + 3_000
        )
    )
    b = list(
        FleetSimulator(scenario, seed=11, origin_ms=ORIGIN_MS).events_between(
            ORIGIN_MS, ORIGIN_MS + 3_000
        )
    )
    c = list(
        FleetSimulator(scenario, seed=12, origin_ms=ORIGIN_MS).events_between(
            ORIGIN_MS, ORIGIN_MS + 3_000
        )
    )
    assert len(a) > 4_000
    assert a == b
    assert [(e.ts_ms, e.latency_ms) for e in a] != [(e.ts_ms, e.latency_ms) for e in c]


@pytest.mark.parametrize("delivery", [{}, DISORDER], ids=["in-order", "disorder"])
def test_chunking_does_not_change_the_stream(delivery: dict[str, float]) -> None:
    sim = FleetSimulator(small_scenario(delivery=delivery), seed=5, origin_ms=ORIGIN_MS)
    start, end = ORIGIN_MS + 500, ORIGIN_MS + 9_700
    whole = list(sim.events_between(start, end))
    cuts = [start, start + 1, start + 999, start + 2_345, start + 2_346, start + 7_000, end]
    pieces = [list(sim.events_between(a, b)) for a, b in itertools.pairwise(cuts)]
    assert whole == [ev for piece in pieces for ev in piece]
    # A fresh simulator, or one that generated other ranges first, gives the same answer.
    fresh = FleetSimulator(small_scenario(delivery=delivery), seed=5, origin_ms=ORIGIN_MS)
    assert list(fresh.events_between(start, end)) == whole


def test_events_are_ordered_unique_in_range_and_valid_on_the_wire() -> None:
    sim = FleetSimulator(small_scenario(), seed=2**63 - 1, origin_ms=ORIGIN_MS)
    events = list(sim.events_between(ORIGIN_MS + 250, ORIGIN_MS + 4_250))
    assert all(ORIGIN_MS + 250 <= ev.ts_ms < ORIGIN_MS + 4_250 for ev in events)
    assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(events))
    assert len({ev.event_id for ev in events}) == len(events)
    # The hot-path codec validates patterns and ranges: every generated event passes it.
    batch = WireBatch(
        batch_id="b1", source_host="sim", pool="alpha", sent_ms=ORIGIN_MS, events=events
    )
    assert decode_batch(encode_batch(batch)).events == events


def test_params_are_the_same_events_as_wire_events() -> None:
    sim = FleetSimulator(small_scenario(), seed=8, origin_ms=ORIGIN_MS)
    events = list(sim.events_between(ORIGIN_MS, ORIGIN_MS + 2_000))
    params = list(sim.params_between(ORIGIN_MS, ORIGIN_MS + 2_000))
    assert len(params) == len(events)
    for ev, kw in zip(events, params, strict=True):
        assert kw == {
            "pool": ev.pool,
            "region": ev.region,
            "proxy_id": ev.proxy_id,
            "outcome": ev.outcome,
            "latency_ms": ev.latency_ms,
            "status_code": ev.status_code,
            "bytes_in": ev.bytes_in,
            "bytes_out": ev.bytes_out,
            "attempts": ev.attempts,
            "target_domain": ev.target_domain,
            "ts_ms": ev.ts_ms,
        }


def test_origin_only_shifts_time() -> None:
    scenario = small_scenario(
        [{"kind": "silence", "at_s": 1, "duration_s": 1, "pool": "alpha", "region": "eu"}]
    )
    early = FleetSimulator(scenario, seed=2, origin_ms=0)
    late = FleetSimulator(scenario, seed=2, origin_ms=ORIGIN_MS)
    a = list(early.events_between(0, 3_000))
    b = list(late.events_between(ORIGIN_MS, ORIGIN_MS + 3_000))
    assert [ev.ts_ms + ORIGIN_MS for ev in a] == [ev.ts_ms for ev in b]
    assert [ev.latency_ms for ev in a] == [ev.latency_ms for ev in b]
    # Event ids stay unique across runs started at different times.
    assert {ev.event_id for ev in a}.isdisjoint(ev.event_id for ev in b)


def test_an_incident_in_one_scope_leaves_every_other_scope_identical() -> None:
    spike = {"kind": "error_spike", "at_s": 1, "duration_s": 2, "pool": "alpha", "region": "eu"}
    calm = FleetSimulator(small_scenario(), seed=4, origin_ms=ORIGIN_MS)
    stormy = FleetSimulator(
        small_scenario([{**spike, "error_rate": 0.9}]), seed=4, origin_ms=ORIGIN_MS
    )
    a = list(calm.events_between(ORIGIN_MS, ORIGIN_MS + 4_000))
    b = list(stormy.events_between(ORIGIN_MS, ORIGIN_MS + 4_000))
    for pool, region in [("alpha", "us"), ("beta", "eu"), ("beta", "us")]:
        assert in_scope(a, pool, region) == in_scope(b, pool, region)
    assert in_scope(a, "alpha", "eu") != in_scope(b, "alpha", "eu")


def test_proxy_ids_are_the_producers_hmac_of_a_synthetic_address() -> None:
    sim = FleetSimulator(small_scenario(), seed=1, origin_ms=ORIGIN_MS)
    hasher = ProxyIdHasher(b"test-simulator-fleet-key", 1_000)
    ids = sim.proxy_ids("beta", "us")
    assert len(ids) == 50
    assert len(set(ids)) == 50
    scope_index = sim.scopes.index(("beta", "us"))
    for i in (0, 17, 49):
        address = proxy_address(scope_index * MAX_PROXIES_PER_SCOPE + i)
        assert address.startswith("10.")
        assert ids[i] == hasher(address)
        assert ids[i] == proxy_id_for(b"test-simulator-fleet-key", address)
        assert len(ids[i]) == 32
        assert int(ids[i], 16) >= 0
    other_key = small_scenario(fleet={"key": "another-fleet-key"})
    assert set(FleetSimulator(other_key, seed=1).proxy_ids("beta", "us")).isdisjoint(ids)
    seen = {ev.proxy_id for ev in sim.events_between(ORIGIN_MS, ORIGIN_MS + 5_000)}
    assert seen - {None} <= {p for pool, region in sim.scopes for p in sim.proxy_ids(pool, region)}


def test_seed_and_origin_are_validated() -> None:
    with pytest.raises(ValueError, match="seed"):
        FleetSimulator(small_scenario(), seed=-1)
    with pytest.raises(ValueError, match="origin_ms"):
        FleetSimulator(small_scenario(), seed=1, origin_ms=-5)
    with pytest.raises(IndexError):
        FleetSimulator(small_scenario(), seed=1).proxy_id("alpha", "eu", 50)
    assert list(FleetSimulator(small_scenario(), seed=1).events_between(10, 10)) == []
