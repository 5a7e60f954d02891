"""Absence rules: silence for N windows, gaps, traffic coming back, forgetting."""

from __future__ import annotations

import json

from alerting_core_kit import WINDOW_MS, Scenario, agg, end_of, rules

from stream_app.core.rules import RuleEngine


def absence_rule(**fields: object) -> str:
    rule: dict[str, object] = {
        "id": "pool-silent",
        "name": "ProxyPoolSilent",
        "kind": "absence",
        "level": "pool",
        "absence": {"windows": 3},
        "severity": "page",
    }
    rule.update(fields)
    return json.dumps({"rules": [rule]})


def test_silent_pool_fires_after_n_windows_and_resolves_on_traffic() -> None:
    sc = Scenario.of(absence_rule())
    for i in range(4):
        sc.window(i, [agg("a", "eu", i), agg("b", "eu", i)])
    for i in range(4, 10):
        sc.window(i, [agg("a", "eu", i)])  # b goes silent from window 4
    fired = sc.fired()
    assert [i for i, _ in fired] == [6]  # the third silent window
    event = fired[0][1]
    assert event.labels["pool"] == "b"
    assert event.labels["alertname"] == "ProxyPoolSilent"
    assert event.starts_at.timestamp() * 1000 == end_of(3)  # end of its last window with traffic
    assert event.value == 30.0
    assert event.threshold == 30.0
    assert "no traffic from pool b" in event.annotations["summary"]

    sc.window(10, [agg("a", "eu", 10), agg("b", "eu", 10)])
    assert [i for i, _ in sc.resolved()] == [10]


def test_never_seen_scopes_do_not_count_as_silent() -> None:
    sc = Scenario.of(absence_rule())
    for i in range(10):
        sc.window(i, [agg("a", "eu", i)])
    assert sc.events == []


def test_skipped_windows_count_as_silent() -> None:
    sc = Scenario.of(absence_rule())
    sc.window(0, [agg("a", "eu", 0)])
    sc.window(3, [])  # the runtime evaluated nothing for windows 1 and 2: 3 silent windows
    assert [i for i, _ in sc.fired()] == [3]


def test_pool_level_absence_needs_every_region_silent() -> None:
    sc = Scenario.of(absence_rule())
    for i in range(2):
        sc.window(i, [agg("a", "eu", i), agg("a", "us", i)])
    for i in range(2, 8):
        sc.window(i, [agg("a", "us", i)])
    assert sc.events == []


def test_forget_after_windows_resolves_a_decommissioned_pool() -> None:
    sc = Scenario.of(absence_rule(absence={"windows": 2, "forget_after_windows": 5}))
    sc.window(0, [agg("old", "eu", 0)])
    for i in range(1, 9):
        sc.window(i, [])
    assert [i for i, _ in sc.fired()] == [2]
    assert [i for i, _ in sc.resolved()] == [5]
    assert sc.engine.snapshot()["absence"] == []


def test_absence_keeps_firing_for_and_for_s_apply() -> None:
    sc = Scenario.of(absence_rule(for_s=50, keep_firing_for_s=20))
    sc.window(0, [agg("a", "eu", 0)])
    for i in range(1, 8):
        sc.window(i, [])
    # silent since end of window 0; 50 s after it is the end of window 5
    assert [i for i, _ in sc.fired()] == [5]
    sc.window(8, [agg("a", "eu", 8)])
    assert sc.resolved() == []  # keep_firing_for: 20 s of traffic first
    sc.window(9, [agg("a", "eu", 9)])
    assert [i for i, _ in sc.resolved()] == [9]
    ends_at = sc.resolved()[0][1].ends_at
    assert ends_at is not None
    assert ends_at.timestamp() * 1000 == end_of(9)
    assert end_of(9) - end_of(8) == WINDOW_MS


def test_downtime_across_a_restart_is_not_silence() -> None:
    text = absence_rule()
    sc = Scenario.of(text)
    sc.window(0, [agg("a", "eu", 0)])
    saved = json.loads(json.dumps(sc.engine.snapshot()))
    restarted = Scenario(RuleEngine(rules(text), state=saved))
    restarted.window(40, [])  # the process was down for 39 windows: one silent window here
    restarted.window(41, [])
    assert restarted.events == []
    restarted.window(42, [])
    assert [i for i, _ in restarted.fired()] == [42]


def test_released_pools_are_not_reported_silent() -> None:
    sc = Scenario.of(absence_rule())
    sc.window(0, [agg("a", "eu", 0), agg("b", "eu", 0)])
    assert sc.engine.release_pools(frozenset({"b"})) == 1  # rebalanced to another worker
    for i in range(1, 6):
        sc.window(i, [agg("a", "eu", i)])
    assert sc.events == []
