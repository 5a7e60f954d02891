"""Scripted breaches through the real pipeline and rules: which alerts fire, when, grouped how,
and when they resolve (an error spike in one pool, latency tripling in one region, 30 pools at
once, a low-traffic pool under min_requests)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alert_scenario_kit import (
    ScenarioRun,
    at,
    error_rate,
    firing,
    fleet_scenario,
    latency_quantile,
    transitions,
)

from schemas.alerts import AlertStatus
from stream_app.alerting.history import read_alert_history
from stream_app.cli_alerts import alerts_history

SPIKE_RULES = """
grouping: {group_by: [alertname], group_wait_s: 10, group_interval_s: 30}
groups:
  - name: pools
    labels: {team: sre}
    rules:
      - id: pool-errors
        name: PoolHighErrorRate
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.2
        level: pool
        min_requests: 50
        for_s: 20
        keep_firing_for_s: 20
        severity: page
        annotations:
          summary: "Error rate {value:.1%} in pool {pool}"
"""


async def test_error_spike_in_one_pool_fires_after_for_and_resolves_after_keep_firing_for(
    tmp_path: Path,
) -> None:
    # beta breaches in [60 s, 120 s) in both regions; alpha and gamma stay at 1 % errors.
    scenario = fleet_scenario(
        {"alpha": 30, "beta": 30, "gamma": 30},
        ("eu", "us"),
        incidents=[
            {"kind": "error_spike", "pool": "beta", "at_s": 60, "duration_s": 60, "error_rate": 0.5}
        ],
    )
    run = ScenarioRun(scenario, SPIKE_RULES, tmp_path)
    async with run:
        await run.advance_to(180)
        await run.delivered()
        labels = {
            "alertname": "PoolHighErrorRate",
            "severity": "page",
            "rule_id": "pool-errors",
            "team": "sre",
            "pool": "beta",
        }
        # for_s 20: pending from the first breaching window (60 s), fires at the end of the
        # second (80 s); keep_firing_for_s 20: clear from 120 s, resolved at the end of 140 s.
        assert transitions(run.events.events) == [
            ("firing", "PoolHighErrorRate", "beta/", at(60), None),
            ("resolved", "PoolHighErrorRate", "beta/", at(60), at(140)),
        ]
        fired, resolved = run.events.events
        assert fired.labels == labels
        assert resolved.labels == labels
        assert (fired.window_start_ms, fired.window_end_ms) == (at(70), at(80))
        assert resolved.window_end_ms == at(140)
        beta_70_80 = [e for e in run.truth(70, 80) if e.pool == "beta"]
        assert fired.value == pytest.approx(error_rate(beta_70_80))
        assert fired.threshold == 0.2
        assert fired.annotations["summary"] == f"Error rate {fired.value:.1%} in pool beta"
        # One notification when group_wait passed after the firing, one for the resolution.
        notes = run.notifications.notifications
        assert [(n.status, [a.fingerprint for a in n.alerts]) for n in notes] == [
            (AlertStatus.FIRING, [fired.fingerprint]),
            (AlertStatus.RESOLVED, [fired.fingerprint]),
        ]
        # The history sink stored both state changes in ClickHouse.
        rows = await asyncio.to_thread(
            read_alert_history,
            run.client,
            run.storage.database,
            from_time=datetime.fromtimestamp(at(0) / 1000, UTC),
            to_time=datetime.fromtimestamp(at(180) / 1000, UTC),
        )
        assert [(r["status"], r["pool"], r["fingerprint"]) for r in rows] == [
            ("firing", "beta", fired.fingerprint),
            ("resolved", "beta", fired.fingerprint),
        ]
        # ... and `alerts history` lists them.
        out, err = io.StringIO(), io.StringIO()
        code = await asyncio.to_thread(
            alerts_history,
            run.storage,
            last_s=300,
            now=datetime.fromtimestamp(at(200) / 1000, UTC),
            out=out,
            err=err,
        )
        assert code == 0
        assert out.getvalue().splitlines() == [
            "2027-01-15T08:01:00.000Z - firing   PoolHighErrorRate [page] beta "
            f"value {fired.value:.4g} (threshold 0.2) {fired.annotations['summary']}",
            "2027-01-15T08:01:00.000Z 2027-01-15T08:02:20.000Z resolved PoolHighErrorRate [page] "
            f"beta value {resolved.value:.4g} (threshold 0.2) {resolved.annotations['summary']}",
        ]
        assert err.getvalue() == "2 alert event(s)\n"
    leftovers = [
        t.get_name()
        for t in asyncio.all_tasks()
        if t.get_name().startswith(("embedded-", "rule-ticks", "rules-file", "alert-sink-"))
    ]
    assert leftovers == [], "alerting left tasks running after close()"


LATENCY_RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: region-p95
    name: RegionSlow
    kind: threshold
    metric: latency_p95_ms
    op: ">"
    threshold: 400
    level: region
    min_requests: 100
    for_s: 20
    severity: warning
"""


async def test_latency_tripling_in_one_region_fires_the_region_rule_for_that_region_only(
    tmp_path: Path,
) -> None:
    # Every region has the same latency (p95 about 210 ms) until eu's triples in [60 s, 120 s).
    scenario = fleet_scenario(
        {"p1": 40, "p2": 40},
        ("us", "eu", "ap"),
        incidents=[
            {
                "kind": "latency_multiplier",
                "region": "eu",
                "at_s": 60,
                "duration_s": 60,
                "factor": 3,
            }
        ],
    )
    run = ScenarioRun(scenario, LATENCY_RULES, tmp_path)
    async with run:
        await run.advance_to(150)
        await run.delivered()
    # Region rules run in the fleet runner, from the windows stored in ClickHouse.
    assert transitions(run.events.events) == [
        ("firing", "RegionSlow", "/eu", at(60), None),
        ("resolved", "RegionSlow", "/eu", at(60), at(130)),
    ]
    fired = run.events.events[0]
    assert fired.labels == {
        "alertname": "RegionSlow",
        "severity": "warning",
        "rule_id": "region-p95",
        "region": "eu",
    }
    assert fired.window_end_ms == at(80)
    eu_70_80 = [e for e in run.truth(70, 80) if e.region == "eu"]
    assert fired.value == pytest.approx(latency_quantile(eu_70_80, 0.95))
    for region in ("us", "ap"):
        calm = [e for e in run.truth(70, 80) if e.region == region]
        assert latency_quantile(calm, 0.95) < 400, f"{region} should be well under the threshold"


GROUPED_RULES = """
grouping: {group_by: [alertname], group_wait_s: 10, group_interval_s: 20}
rules:
  - id: scope-errors
    name: ScopeHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
    for_s: 20
    severity: page
"""


async def test_thirty_pools_breaching_together_make_one_notification_group(
    tmp_path: Path,
) -> None:
    pools = [f"p{i:02d}" for i in range(30)]
    scenario = fleet_scenario(
        dict.fromkeys(pools, 10.0),
        incidents=[
            {"kind": "error_spike", "pool": p, "at_s": 60, "duration_s": 40, "error_rate": 0.6}
            for p in pools
        ],
    )
    run = ScenarioRun(scenario, GROUPED_RULES, tmp_path)
    async with run:
        await run.advance_to(140)
        await run.delivered()
    events = run.events.events
    assert sorted(transitions(firing(events))) == [
        ("firing", "ScopeHighErrorRate", f"{p}/eu", at(60), None) for p in pools
    ]
    assert sorted(transitions(e for e in events if e.status is AlertStatus.RESOLVED)) == [
        ("resolved", "ScopeHighErrorRate", f"{p}/eu", at(60), at(110)) for p in pools
    ]
    assert {e.window_end_ms for e in firing(events)} == {at(80)}
    # Fired at 90 s (when the 80 s window closed): group_wait 10 s -> ONE notification with all
    # 30 alerts; their resolutions (at 120 s) -> one more, after group_interval.
    notes = run.notifications.notifications
    assert [(n.status, len(n.alerts)) for n in notes] == [
        (AlertStatus.FIRING, 30),
        (AlertStatus.RESOLVED, 30),
    ]
    assert notes[0].group_labels == {"alertname": "ScopeHighErrorRate"}
    assert {a.labels["pool"] for a in notes[0].alerts} == set(pools)
    assert notes[0].common_labels == {
        "alertname": "ScopeHighErrorRate",
        "region": "eu",
        "rule_id": "scope-errors",
        "severity": "page",
    }


MIN_REQUESTS_RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: scope-errors
    name: ScopeHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
    severity: page
"""


async def test_a_low_traffic_pool_under_min_requests_does_not_fire(tmp_path: Path) -> None:
    # Both pools fail 60 % of requests in [60 s, 120 s); "tiny" has ~10 requests per window.
    scenario = fleet_scenario(
        {"big": 30, "tiny": 1},
        incidents=[
            {"kind": "error_spike", "pool": p, "at_s": 60, "duration_s": 60, "error_rate": 0.6}
            for p in ("big", "tiny")
        ],
    )
    run = ScenarioRun(scenario, MIN_REQUESTS_RULES, tmp_path)
    async with run:
        await run.advance_to(150)
        await run.delivered()
    assert transitions(run.events.events) == [
        ("firing", "ScopeHighErrorRate", "big/eu", at(60), None),
        ("resolved", "ScopeHighErrorRate", "big/eu", at(60), at(130)),
    ]
    # The tiny pool did breach the threshold, on fewer requests than min_requests.
    for start in range(60, 120, 10):
        tiny = [e for e in run.truth(start, start + 10) if e.pool == "tiny"]
        assert 0 < len(tiny) < 50
    tiny_all = [e for e in run.truth(60, 120) if e.pool == "tiny"]
    assert error_rate(tiny_all) > 0.2
