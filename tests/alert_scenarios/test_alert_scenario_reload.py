"""Rules file reloads while the pipeline runs: a valid version is put in force at once (alerts
of removed rules resolve, new rules evaluate from the next window, the change is audited); an
invalid version is refused and the rules in force stay."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from alert_scenario_kit import (
    ScenarioRun,
    at,
    fleet_scenario,
    transitions,
    wait_until,
    write_atomically,
)

from stream_app.alerting.history import RuleAuditWriter

V1 = """
grouping: {group_wait_s: 0}
rules:
  - id: errors-v1
    name: PoolErrorsV1
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
    min_requests: 50
    severity: page
"""
V2 = """
grouping: {group_wait_s: 0}
rules:
  - id: errors-v2
    name: PoolErrorsV2
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.3
    min_requests: 50
    severity: warning
"""
INVALID = """
grouping: {group_wait_s: 0}
rules:
  - id: errors-v3
    name: PoolErrorsV3
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 3
    severity: page
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_valid_and_invalid_rules_files_are_reloaded_while_the_pipeline_runs(
    tmp_path: Path,
) -> None:
    # alpha fails 50 % of its requests from 30 s on; beta is fine.
    scenario = fleet_scenario(
        {"alpha": 20, "beta": 20},
        incidents=[
            {
                "kind": "error_spike",
                "pool": "alpha",
                "at_s": 30,
                "duration_s": 300,
                "error_rate": 0.5,
            }
        ],
    )
    run = ScenarioRun(scenario, V1, tmp_path)
    alerting = run.alerting
    async with run:
        await run.advance_to(60)
        await run.delivered()
        assert transitions(run.events.events) == [
            ("firing", "PoolErrorsV1", "alpha/eu", at(30), None)
        ]

        # A valid new version: v1 is removed (its alert resolves now), v2 is added.
        write_atomically(run.rules_path, V2)
        await wait_until(lambda: alerting.rules.digest == _digest(V2), 5.0, "v2 in force")
        await run.delivered()
        assert transitions(run.events.events[1:]) == [
            ("resolved", "PoolErrorsV1", "alpha/eu", at(30), at(60))
        ]
        await run.advance_to(80)
        await run.delivered()
        # v2 evaluates from the next closed window (50-60 s) on.
        assert transitions(run.events.events[2:]) == [
            ("firing", "PoolErrorsV2", "alpha/eu", at(50), None)
        ]
        assert run.events.events[2].window_end_ms == at(60)

        # An invalid version: refused, counted, v2 stays in force and keeps evaluating.
        write_atomically(run.rules_path, INVALID)
        await wait_until(
            lambda: run.metric("pwm_rules_reload_errors_total") == 1.0, 5.0, "the refusal"
        )
        assert run.metric("pwm_rules_last_reload_ok") == 0.0
        assert run.metric("pwm_rules_reloads_total") == 2.0
        assert alerting.rules.digest == _digest(V2)
        assert any("errors-v3" in p and "threshold" in p for p in alerting.watcher.last_errors)
        await run.advance_to(120)
        await run.delivered()
        assert len(run.events.events) == 3, "nothing changed while v2 stayed in force"
        assert alerting.scope_runner.engine.rules.digest == _digest(V2)

        # Fixing the file puts it in force again.
        write_atomically(run.rules_path, V1)
        await wait_until(lambda: alerting.rules.digest == _digest(V1), 5.0, "v1 again")
        assert run.metric("pwm_rules_last_reload_ok") == 1.0

        # The audit holds the valid versions' changes only (the refused one left no trace).
        audit = RuleAuditWriter(run.client, run.storage.database)
        await wait_until(lambda: len(audit.read()) == 5, 5.0, "the audit of every valid version")
        rows = await asyncio.to_thread(audit.read)
    assert sorted((r.source_digest, r.rule_id, r.action) for r in rows) == sorted(
        [
            (_digest(V1), "errors-v1", "added"),
            (_digest(V2), "errors-v1", "removed"),
            (_digest(V2), "errors-v2", "added"),
            (_digest(V1), "errors-v1", "added"),
            (_digest(V1), "errors-v2", "removed"),
        ]
    )
    assert {r.actor for r in rows} == {f"file:{run.rules_path}"}
