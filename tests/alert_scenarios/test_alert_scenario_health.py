"""Pipeline health from the embedded pipeline: while the storage is down the engines hold and
ONE PipelineDegraded alert fires (not one per engine); it resolves when writes go through."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alert_scenario_kit import ScenarioRun, at, fleet_scenario, transitions, wait_until

HEALTH_RULES = """
grouping: {group_wait_s: 0}
pipeline_health:
  max_lag_ms: 60000
  max_staleness_ms: 60000
  hold_on_sink_down: true
  for_s: 5
rules:
  - id: scope-errors
    name: ScopeHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
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


async def test_a_storage_outage_raises_one_pipeline_alert_until_writes_go_through(
    tmp_path: Path,
) -> None:
    run = ScenarioRun(fleet_scenario({"alpha": 20, "beta": 20}), HEALTH_RULES, tmp_path)
    pipeline, alerting = run.pipeline, run.alerting
    async with run:
        await run.advance_to(30)
        run.sink.down = True
        stuck = asyncio.create_task(run.step())  # feeds 30-40 s; its write is retried
        await wait_until(lambda: pipeline.stats.sink_retries >= 1, 10.0, "a refused write")
        alerting.report_pipeline_status()  # degraded from 40 s (virtual)
        run.clock.now_ms = at(46)
        retries = pipeline.stats.sink_retries
        await wait_until(lambda: pipeline.stats.sink_retries > retries, 10.0, "another retry")
        alerting.report_pipeline_status()  # degraded for 6 s > for_s 5: fires
        await run.delivered()
        assert transitions(run.events.events) == [("firing", "PipelineDegraded", "/", at(40), None)]
        assert not stuck.done(), "the pipeline takes no records while its writes fail"

        run.sink.down = False  # the next retry goes through; closed windows report healthy
        await asyncio.wait_for(stuck, 15.0)
        await run.delivered()
    assert transitions(run.events.events) == [
        ("firing", "PipelineDegraded", "/", at(40), None),
        ("resolved", "PipelineDegraded", "/", at(40), at(46)),
    ]
    assert run.events.events[0].labels == {
        "alertname": "PipelineDegraded",
        "severity": "page",
        "rule_id": "pipeline-health",
    }
    assert "aggregate sink down" in run.events.events[0].annotations["summary"]
    # Both engines were degraded and each raised the alert; the fleet engine's copy was not
    # delivered, so it was announced once.
    scope, fleet = alerting.scope_runner.engine.stats, alerting.fleet_runner.engine.stats
    assert (scope.alerts_fired, fleet.alerts_fired) == (1, 1)
    assert scope.pipeline_degradations == fleet.pipeline_degradations == 1
    assert run.sink.refused >= 2
