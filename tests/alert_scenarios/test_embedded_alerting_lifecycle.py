"""EmbeddedAlerting's lifecycle: a clean close at any moment (no task left behind), an invalid
rules file refused at start, and engine state carried over a restart (no re-fire, a proper
resolution afterwards)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alert_scenario_kit import ScenarioRun, at, fleet_scenario, transitions, wait_until

from stream_app.alerting.errors import RulesFileError

RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: scope-errors
    name: ScopeHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
    keep_firing_for_s: 20
    severity: page
  - id: region-errors
    name: RegionHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    level: region
    min_requests: 50
    severity: page
"""
_OURS = ("embedded-", "rule-ticks", "rules-file", "alert-sink-")


def _our_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(_OURS)]


async def test_close_right_after_windows_closed_returns_and_leaves_no_task(
    tmp_path: Path,
) -> None:
    run = ScenarioRun(fleet_scenario({"alpha": 20}), RULES, tmp_path)
    alerting = run.alerting
    await alerting.start()
    assert _our_tasks()
    await run.advance_to(20)
    await wait_until(lambda: alerting.fleet_rules_idle, 10.0, "the fleet task to wait")
    await run.step(wait_for_fleet=False)
    # The step's closed window has just woken the waiting fleet-rules task: close at once
    # (asyncio.wait_for would swallow this cancellation on 3.11 and close() would hang).
    await asyncio.wait_for(alerting.close(), 10.0)
    assert _our_tasks() == []


async def test_an_invalid_rules_file_is_refused_at_start(tmp_path: Path) -> None:
    run = ScenarioRun(fleet_scenario({"alpha": 20}), RULES.replace("0.2", "2.0", 1), tmp_path)
    with pytest.raises(RulesFileError) as refused:
        await run.alerting.start()
    assert any("scope-errors" in p and "threshold" in p for p in refused.value.problems)
    assert _our_tasks() == []


async def test_a_restart_keeps_firing_alerts_firing_and_resolves_them_later(
    tmp_path: Path,
) -> None:
    scenario = fleet_scenario(
        {"alpha": 20, "beta": 20},
        incidents=[
            {
                "kind": "error_spike",
                "pool": "alpha",
                "at_s": 20,
                "duration_s": 60,
                "error_rate": 0.6,
            }
        ],
    )
    first = ScenarioRun(scenario, RULES, tmp_path / "first")
    async with first:
        await first.advance_to(50)
        await first.delivered()
    assert sorted(transitions(first.events.events)) == [
        ("firing", "RegionHighErrorRate", "/eu", at(20), None),
        ("firing", "ScopeHighErrorRate", "alpha/eu", at(20), None),
    ]
    # The service comes back (same database, same state names) and carries on from 50 s.
    second = ScenarioRun(
        scenario,
        RULES,
        tmp_path / "second",
        storage=(first.client, first.storage),
        name=first.name,
        start_s=50,
    )
    async with second:
        await second.advance_to(120)
        await second.delivered()
    # Nothing fires twice; both alerts resolve when the spike is over (80 s): the scope one
    # after keep_firing_for (20 s), with the startsAt of the first run.
    assert sorted(transitions(second.events.events)) == [
        ("resolved", "RegionHighErrorRate", "/eu", at(20), at(90)),
        ("resolved", "ScopeHighErrorRate", "alpha/eu", at(20), at(100)),
    ]
