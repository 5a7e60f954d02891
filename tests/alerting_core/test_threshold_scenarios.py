"""Threshold rules through the whole engine: for, keep_firing_for, levels, grouping, flapping."""

from __future__ import annotations

import json

from alerting_core_kit import (
    LAG_MS,
    T0_MS,
    WINDOW_MS,
    Scenario,
    agg,
    end_of,
    threshold_rule,
)

from schemas.alerts import AlertStatus, fingerprint
from schemas.events import Outcome


def test_alertmanager_fingerprint_test_vector() -> None:
    labels = {
        "alertname": "ProxyPoolHighErrorRate",
        "pool": "poolA",
        "region": "eu",
        "severity": "page",
    }
    assert fingerprint(labels) == "bb56319a8aab4ed3"


def test_error_spike_fires_after_for_and_resolves_after_keep_firing_for() -> None:
    sc = Scenario.of(threshold_rule(for_s=30, keep_firing_for_s=20))
    for i in range(14):
        spike = 3 <= i <= 7
        sc.window(i, [agg("poolA", "eu", i, errors=20 if spike else 1), agg("poolB", "eu", i)])

    fired = sc.fired()
    assert [i for i, _ in fired] == [5]  # breach since window 3's start; 30 s at window 5's end
    event = fired[0][1]
    assert event.labels == {
        "alertname": "ProxyPoolHighErrorRate",
        "severity": "page",
        "rule_id": "pool-errors",
        "pool": "poolA",
        "region": "eu",
    }
    assert event.fingerprint == fingerprint(event.labels)
    assert event.starts_at.timestamp() * 1000 == end_of(3) - WINDOW_MS
    assert event.value == 0.2
    assert event.threshold == 0.05
    assert (event.window_start_ms, event.window_end_ms) == (end_of(5) - WINDOW_MS, end_of(5))
    assert "20.00%" in event.annotations["summary"]
    assert "pool poolA in region eu" in event.annotations["summary"]

    resolved = sc.resolved()
    # clear from window 8; keep_firing_for 20 s holds through window 8, resolves at window 9
    assert [i for i, _ in resolved] == [9]
    assert resolved[0][1].fingerprint == event.fingerprint
    assert resolved[0][1].ends_at is not None
    assert resolved[0][1].ends_at.timestamp() * 1000 == end_of(9)
    assert resolved[0][1].starts_at == event.starts_at
    assert sc.engine.active_alerts() == []


def test_for_windows_counts_windows_and_zero_for_fires_at_once() -> None:
    sc = Scenario.of(threshold_rule(for_windows=3))
    for i in range(5):
        sc.window(i, [agg("poolA", "eu", i, errors=30)])
    assert [i for i, _ in sc.fired()] == [2]

    immediate = Scenario.of(threshold_rule(for_s=0))
    immediate.window(0, [agg("poolA", "eu", 0, errors=30)])
    assert [i for i, _ in immediate.fired()] == [0]


def test_latency_tripling_in_one_region_fires_a_region_rule() -> None:
    rule = threshold_rule(
        id="region-p95",
        name="ProxyRegionSlow",
        metric="latency_p95_ms",
        threshold=500,
        level="region",
        for_s=20,
    )
    sc = Scenario.of(rule)
    pools = ["p1", "p2", "p3"]
    for i in range(8):
        slow = i >= 3
        aggs = [agg(p, "eu", i, latency_ms=600.0 if slow else 200.0) for p in pools]
        aggs += [agg(p, "us", i, latency_ms=200.0) for p in pools]
        sc.window(i, aggs)
    fired = sc.fired()
    assert [i for i, _ in fired] == [4]
    event = fired[0][1]
    assert event.labels["region"] == "eu"
    assert "pool" not in event.labels
    assert event.value is not None
    assert abs(event.value - 600.0) <= 600.0 * 0.01
    assert "region eu" in event.annotations["summary"]


def test_region_percentile_comes_from_merged_buckets_not_averages() -> None:
    # one pool slow with little traffic, one fast with much: the region p95 is the fast one,
    # while an average of per-pool p95s would be far above the threshold.
    rule = threshold_rule(metric="latency_p95_ms", threshold=500, level="region", for_s=0)
    sc = Scenario.of(rule)
    sc.window(
        0,
        [
            agg("slow", "eu", 0, requests=3, latency_ms=2000.0),
            agg("fast", "eu", 0, requests=200, latency_ms=100.0),
        ],
    )
    assert sc.fired() == []


def test_pool_level_adds_up_the_regions_of_a_pool() -> None:
    rule = threshold_rule(level="pool", threshold=0.1, for_s=0)
    sc = Scenario.of(rule)
    # 15 % errors in one region, 5 % in the other, same traffic: pool-wide 10 %, not above 10 %
    sc.window(0, [agg("poolA", "eu", 0, errors=15), agg("poolA", "us", 0, errors=5)])
    assert sc.fired() == []
    sc.window(1, [agg("poolA", "eu", 1, errors=16), agg("poolA", "us", 1, errors=5)])
    (i, event), *rest = sc.fired()
    assert (i, rest) == (1, [])
    assert event.labels["pool"] == "poolA"
    assert "region" not in event.labels
    assert event.value == 21 / 200


def test_selector_limits_scopes() -> None:
    rule = threshold_rule(selector={"pool": "pay-*", "region": ["re:eu-(west|north)"]}, for_s=0)
    sc = Scenario.of(rule)
    sc.window(
        0,
        [
            agg("pay-1", "eu-west", 0, errors=50),
            agg("pay-2", "eu-south", 0, errors=50),
            agg("shop-1", "eu-west", 0, errors=50),
        ],
    )
    assert [e.labels["pool"] for _, e in sc.fired()] == ["pay-1"]


def test_outcome_rate_and_5xx_share() -> None:
    text = json.dumps(
        {
            "rules": [
                {
                    "id": "auth",
                    "name": "ProxyAuth",
                    "kind": "threshold",
                    "metric": "outcome_rate",
                    "outcome": "proxy_auth_error",
                    "op": ">=",
                    "threshold": 0.1,
                },
                {
                    "id": "five",
                    "name": "Proxy5xx",
                    "kind": "threshold",
                    "metric": "status_5xx_rate",
                    "op": ">",
                    "threshold": 0.2,
                },
            ]
        }
    )
    sc = Scenario.of(text)
    sc.window(
        0,
        [
            agg("a", "eu", 0, errors=10, error_outcome=Outcome.PROXY_AUTH_ERROR),
            agg("b", "eu", 0, errors=10, error_outcome=Outcome.TIMEOUT, status_5xx=30),
        ],
    )
    assert sorted((e.labels["rule_id"], e.labels["pool"]) for _, e in sc.fired()) == [
        ("auth", "a"),
        ("five", "b"),
    ]


def test_min_requests_keeps_tiny_windows_from_paging() -> None:
    sc = Scenario.of(threshold_rule(min_requests=20, for_s=0))
    for i in range(5):
        sc.window(i, [agg("tiny", "eu", i, requests=3, errors=3)])
    assert sc.fired() == []
    sc.window(5, [agg("tiny", "eu", 5, requests=20, errors=3)])
    assert [e.labels["pool"] for _, e in sc.fired()] == ["tiny"]


def test_thirty_pools_breaching_together_make_one_notification() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    pools = [f"pool{n:02d}" for n in range(30)]
    sc.window(0, [agg(p, "eu", 0) for p in pools])
    out = sc.window(1, [agg(p, "eu", 1, errors=40) for p in pools])
    assert len(out.events) == 30
    assert out.notifications == []
    fired_at = end_of(1) + LAG_MS
    assert sc.engine.next_deadline_ms() == fired_at + 30_000

    assert sc.tick(1, fired_at + 29_999).notifications == []
    (note,) = sc.tick(1, fired_at + 30_000).notifications
    assert note.status is AlertStatus.FIRING
    assert note.group_labels == {"alertname": "ProxyPoolHighErrorRate"}
    assert len(note.alerts) == 30
    assert {a.labels["pool"] for a in note.alerts} == set(pools)
    assert note.common_labels["alertname"] == "ProxyPoolHighErrorRate"
    assert "pool" not in note.common_labels
    assert sc.tick(1, fired_at + 31_000).notifications == []


def test_flapping_pool_does_not_storm() -> None:
    sc = Scenario.of(threshold_rule(for_s=30, keep_firing_for_s=60))
    # alternate bad/good: pending resets every other window, never reaches for_s
    for i in range(20):
        sc.window(i, [agg("flappy", "eu", i, errors=30 if i % 2 == 0 else 0)])
    assert sc.events == []

    # sustained breach fires once; flapping afterwards stays the same single alert
    for i in range(20, 24):
        sc.window(i, [agg("flappy", "eu", i, errors=30)])
    for i in range(24, 44):
        sc.window(i, [agg("flappy", "eu", i, errors=30 if i % 3 == 0 else 0)])
    assert [e.status for _, e in sc.events] == [AlertStatus.FIRING]
    for i in range(44, 52):
        sc.window(i, [agg("flappy", "eu", i)])
    assert [e.status for _, e in sc.events] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_missing_scope_is_no_data_and_resolves() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    sc.window(0, [agg("gone", "eu", 0, errors=50)])
    assert len(sc.fired()) == 1
    sc.window(1, [])
    assert [i for i, _ in sc.resolved()] == [1]


def test_firing_alerts_are_resent_on_the_wall_clock() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    sc.window(0, [agg("a", "eu", 0, errors=50)])
    first_sent = end_of(0) + LAG_MS
    assert sc.tick(0, first_sent + 59_999).resends == []
    (again,) = sc.tick(0, first_sent + 60_000).resends
    assert again.status is AlertStatus.FIRING
    assert again.fingerprint == sc.fired()[0][1].fingerprint
    assert again.starts_at == sc.fired()[0][1].starts_at
    assert sc.tick(0, first_sent + 60_001).resends == []
    assert sc.events[1:] == []  # re-sends are not state changes


def test_old_and_foreign_windows_are_skipped_and_counted() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    sc.window(5, [agg("a", "eu", 5)])
    sc.window(4, [agg("a", "eu", 4, errors=90)])
    assert sc.engine.stats.windows_out_of_order == 1
    # an aggregate of another window in the batch is ignored
    sc.window(6, [agg("a", "eu", 7, errors=90)])
    assert sc.engine.stats.aggregates_ignored == 1
    assert sc.fired() == []


def test_proxy_rules_run_on_the_proxy_stream_only() -> None:
    rule = threshold_rule(level="proxy", metric="outcome_rate", outcome="timeout", for_s=0)
    sc = Scenario.of(rule, proxy_window_s=60)
    proxy = "ab" * 16
    bad = agg("a", "eu", 0, errors=50, error_outcome=Outcome.TIMEOUT, proxy_id=proxy, window_s=60)
    out = sc.engine.evaluate_window([bad], window_end_ms=T0_MS + 60_000, now_ms=T0_MS + 61_000)
    assert out.events == []  # per-proxy aggregates on the scope stream are ignored
    out = sc.engine.evaluate_window(
        [bad], window_end_ms=T0_MS + 60_000, now_ms=T0_MS + 61_000, per_proxy=True
    )
    (event,) = out.events
    assert event.labels["proxy_id"] == proxy
    assert (event.labels["pool"], event.labels["region"]) == ("a", "eu")
