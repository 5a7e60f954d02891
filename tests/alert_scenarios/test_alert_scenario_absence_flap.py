"""A silent pool and a flapping pool through the real pipeline and rules: absence fires after N
silent windows and resolves when traffic returns; flapping makes a bounded number of
transitions, as the rules' for / keep_firing_for say."""

from __future__ import annotations

from pathlib import Path

from alert_scenario_kit import ScenarioRun, at, fleet_scenario, transitions

SILENCE_RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: scope-silent
    name: ScopeSilent
    kind: absence
    level: pool_region
    absence: {windows: 3}
    severity: page
    annotations:
      summary: "No traffic from {pool}/{region} for {value:.0f} s"
"""


async def test_a_silent_pool_fires_after_n_windows_and_resolves_when_traffic_returns(
    tmp_path: Path,
) -> None:
    # gamma's eu hosts send nothing in [60 s, 110 s); every other scope keeps its traffic.
    scenario = fleet_scenario(
        {"alpha": 20, "gamma": 20},
        ("eu", "us"),
        incidents=[
            {"kind": "silence", "pool": "gamma", "region": "eu", "at_s": 60, "duration_s": 50}
        ],
    )
    run = ScenarioRun(scenario, SILENCE_RULES, tmp_path)
    async with run:
        await run.advance_to(150)
        await run.delivered()
    # Last traffic in the window ending 60 s; silent windows end 70, 80, 90 -> fires with the
    # third (90 s), startsAt = the end of the last window with traffic; traffic is back in the
    # window ending 120 s -> resolved then.
    assert transitions(run.events.events) == [
        ("firing", "ScopeSilent", "gamma/eu", at(60), None),
        ("resolved", "ScopeSilent", "gamma/eu", at(60), at(120)),
    ]
    fired, _ = run.events.events
    assert fired.window_end_ms == at(90)
    assert fired.value == 30.0
    assert fired.threshold == 30.0
    assert fired.annotations["summary"] == "No traffic from gamma/eu for 30 s"
    assert [e for e in run.truth(60, 110) if (e.pool, e.region) == ("gamma", "eu")] == []


FLAP_RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: flap-strict
    name: StrictErrors
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
    for_s: 20
    severity: page
  - id: flap-sticky
    name: StickyErrors
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
    keep_firing_for_s: 30
    severity: warning
"""


async def test_a_flapping_pool_makes_no_alert_storm(tmp_path: Path) -> None:
    # flappy fails 60 % of requests every other window from 60 s to 180 s (6 bad windows).
    scenario = fleet_scenario(
        {"steady": 20, "flappy": 20},
        incidents=[
            {
                "kind": "flap",
                "pool": "flappy",
                "at_s": 60,
                "duration_s": 120,
                "period_s": 10,
                "effect": "errors",
                "error_rate": 0.6,
            }
        ],
    )
    run = ScenarioRun(scenario, FLAP_RULES, tmp_path)
    async with run:
        await run.advance_to(230)
        await run.delivered()
    bad = [s for s in range(40, 220, 10) if _errors(run, "flappy", s) > 0.2]
    assert bad == [60, 80, 100, 120, 140, 160]
    # StrictErrors (for 20 s) never sees two breaching windows in a row: never fires.
    # StickyErrors fires on the first bad window and keep_firing_for (30 s) bridges every good
    # window in between: one firing and one resolution, 30 s after the last bad window.
    assert transitions(run.events.events) == [
        ("firing", "StickyErrors", "flappy/eu", at(60), None),
        ("resolved", "StickyErrors", "flappy/eu", at(60), at(200)),
    ]
    engine = run.alerting.scope_runner.engine
    assert (engine.stats.alerts_fired, engine.stats.alerts_resolved) == (1, 1)


def _errors(run: ScenarioRun, pool: str, start_s: int) -> float:
    events = [e for e in run.truth(start_s, start_s + 10) if e.pool == pool]
    return sum(e.outcome.value != "success" for e in events) / len(events)
