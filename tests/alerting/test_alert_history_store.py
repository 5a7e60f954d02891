"""Alert history and rule audit in ClickHouse (embedded chDB), through the storage client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from alert_test_events import T0, event
from prometheus_client import CollectorRegistry

from schemas.alerts import AlertStatus
from schemas.rules import parse_rules
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.history import (
    ClickHouseAlertHistory,
    RuleAuditWriter,
    read_alert_history,
)
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.rule_changes import rules_by_id
from stream_app.storage.client import StorageClient

RULES_V1 = """
rules:
  - id: pool-errors
    name: ProxyPoolHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.05
  - id: slow-p95
    name: ProxyPoolSlow
    kind: threshold
    metric: latency_p95_ms
    op: ">"
    threshold: 800
"""
RULES_V2 = """
rules:
  - id: pool-errors
    name: ProxyPoolHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.10
  - id: timeouts
    name: ProxyPoolTimeouts
    kind: threshold
    metric: outcome_rate
    outcome: timeout
    op: ">"
    threshold: 0.2
"""


async def test_history_sink_writes_each_event_once(
    chdb_database: tuple[StorageClient, str],
    metrics: AlertingMetrics,
    registry: CollectorRegistry,
) -> None:
    client, database = chdb_database
    sink = ClickHouseAlertHistory(client, database)
    dispatcher = AlertDispatcher([sink], metrics)
    await dispatcher.start()
    firing = event("hist", seq=1)
    resolved = event("hist", status=AlertStatus.RESOLVED, seq=1)
    dispatcher.publish(firing)
    dispatcher.publish(firing)  # the same event again (a retry, or a second worker)
    dispatcher.publish(resolved)
    assert await dispatcher.drain(timeout_s=30)
    await dispatcher.close()
    assert registry.get_sample_value("pwm_alert_delivered_total", {"sink": "history"}) == 3

    rows = read_alert_history(
        client, database, from_time=T0 - timedelta(hours=1), to_time=T0 + timedelta(hours=1)
    )
    rows = [r for r in rows if r["pool"] == "hist"]
    assert [r["status"] for r in rows] == ["firing", "resolved"]
    first = rows[0]
    assert first["fingerprint"] == firing.fingerprint
    assert first["labels"] == firing.labels
    assert first["annotations"] == firing.annotations
    assert first["alertname"] == "ProxyPoolHighErrorRate"
    assert first["region"] == "eu"
    assert first["starts_at"].replace(tzinfo=UTC) == firing.starts_at
    assert first["ends_at"] is None
    assert first["value"] == 1.0
    assert first["threshold"] == 0.05
    assert rows[1]["ends_at"].replace(tzinfo=UTC) == resolved.ends_at
    # Outside the incident's span: nothing.
    later = read_alert_history(
        client, database, from_time=T0 + timedelta(hours=2), to_time=T0 + timedelta(hours=3)
    )
    assert [r for r in later if r["pool"] == "hist" and r["status"] == "resolved"] == []


def test_audit_records_only_differences_and_converges(
    chdb_database: tuple[StorageClient, str],
) -> None:
    client, database = chdb_database
    writer = RuleAuditWriter(client, database, host="worker-1")
    v1 = parse_rules(RULES_V1, "rules.yaml")
    v2 = parse_rules(RULES_V2, "rules.yaml")
    changed_at = datetime(2026, 1, 1, tzinfo=UTC)

    first = writer.record(
        rules_by_id(v1), actor="file:rules.yaml", source_digest=v1.digest, changed_at=changed_at
    )
    assert [(c.rule_id, c.action) for c in first] == [
        ("pool-errors", "added"),
        ("slow-p95", "added"),
    ]
    # Recording the same state again (a restart, a second worker) writes nothing.
    assert writer.record(rules_by_id(v1), actor="file:rules.yaml", source_digest=v1.digest) == []
    other_worker = RuleAuditWriter(client, database, host="worker-2")
    assert other_worker.record(rules_by_id(v1), actor="file:x", source_digest=v1.digest) == []

    second = writer.record(
        rules_by_id(v2),
        actor="file:rules.yaml",
        source_digest=v2.digest,
        changed_at=changed_at + timedelta(seconds=5),
    )
    assert [(c.rule_id, c.action) for c in second] == [
        ("pool-errors", "changed"),
        ("slow-p95", "removed"),
        ("timeouts", "added"),
    ]
    rows = writer.read()
    assert len(rows) == 5
    changed = next(r for r in rows if r.rule_id == "pool-errors" and r.action == "changed")
    assert json.loads(changed.before)["threshold"] == 0.05
    assert json.loads(changed.after)["threshold"] == 0.10
    assert changed.actor == "file:rules.yaml"
    assert changed.host == "worker-1"
    assert changed.source_digest == v2.digest
    removed = next(r for r in rows if r.action == "removed")
    assert removed.rule_id == "slow-p95"
    assert removed.after == ""
    assert json.loads(removed.before)["metric"] == "latency_p95_ms"
    state, latest = writer.audited_state()
    assert state == rules_by_id(v2)
    assert latest is not None

    # Going back to v1 and forward to v2 again is recorded again (not mistaken for a retry).
    writer.record(
        rules_by_id(v1),
        actor="file:rules.yaml",
        source_digest=v1.digest,
        changed_at=changed_at + timedelta(seconds=10),
    )
    again = writer.record(
        rules_by_id(v2),
        actor="file:rules.yaml",
        source_digest=v2.digest,
        changed_at=changed_at + timedelta(seconds=15),
    )
    assert len(again) == 3
    assert len(writer.read()) == 11
    assert [r.action for r in writer.read(rule_id="slow-p95")] == [
        "added",
        "removed",
        "added",
        "removed",
    ]
