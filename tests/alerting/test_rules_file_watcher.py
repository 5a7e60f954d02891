"""Hot reload of the rules file: valid edits take effect within 5 s, invalid ones are refused
(old rules stay, error metrics, no audit), and every valid change lands in the audit table."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from alerting_chdb import ALERTING_MIGRATIONS
from alerting_waits import wait_until
from prometheus_client import CollectorRegistry

from schemas.migrations import load_migrations
from schemas.rules import RuleSet
from stream_app.alerting.errors import RulesFileError
from stream_app.alerting.history import RuleAuditWriter
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.rules_watcher import RulesFileWatcher
from stream_app.storage.client import StorageClient
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings

V1 = """\
rules:
  - id: pool-errors
    name: ProxyPoolHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.05
"""
V2 = (
    V1.replace("0.05", "0.07")
    + """\
  - id: slow-p95
    name: ProxyPoolSlow
    kind: threshold
    metric: latency_p95_ms
    op: ">"
    threshold: 800
"""
)
BAD = V2.replace("threshold: 0.07", "threshold: 7")  # a rate above 1


class Applied:
    """Records every rule set put in force."""

    def __init__(self) -> None:
        self.versions: list[RuleSet] = []

    def __call__(self, rule_set: RuleSet) -> None:
        self.versions.append(rule_set)

    def thresholds(self) -> dict[str, float]:
        return {r.id: getattr(r, "threshold", -1.0) for r in self.versions[-1].rules}


def write(path: Path, text: str) -> None:
    """Replace the file the way deployment tools do (write aside, rename over)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def gauge(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


async def test_valid_edit_takes_effect_within_5s_and_is_audited(
    tmp_path: Path,
    metrics: AlertingMetrics,
    registry: CollectorRegistry,
    chdb_database: tuple[StorageClient, str],
) -> None:
    client, database = chdb_database
    path = tmp_path / "rules.yaml"
    write(path, V1)
    applied = Applied()
    audit = RuleAuditWriter(client, database)
    watcher = RulesFileWatcher(path, applied, metrics, audit=audit)
    await watcher.load_initial()
    watcher.start()
    try:
        assert applied.thresholds() == {"pool-errors": 0.05}
        write(path, V2)
        await wait_until(lambda: len(applied.versions) == 2, timeout_s=5.0)
        assert applied.thresholds() == {"pool-errors": 0.07, "slow-p95": 800}
        assert watcher.rules is applied.versions[-1]
        assert gauge(registry, "pwm_rules_last_reload_ok") == 1
        assert gauge(registry, "pwm_rules_reloads_total") == 2
        # Touching the file without changing it applies nothing.
        os.utime(path)
        assert await watcher.check_once() is False
    finally:
        await watcher.stop()
    rows = audit.read()
    assert [(r.rule_id, r.action) for r in rows] == [
        ("pool-errors", "added"),
        ("pool-errors", "changed"),
        ("slow-p95", "added"),
    ]
    assert {r.actor for r in rows} == {f"file:{path}"}
    assert rows[-1].source_digest == applied.versions[-1].digest
    assert json.loads(rows[1].after)["threshold"] == 0.07


async def test_invalid_edit_is_refused_and_old_rules_stay(
    tmp_path: Path,
    metrics: AlertingMetrics,
    registry: CollectorRegistry,
    chdb_database: tuple[StorageClient, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, database = chdb_database
    path = tmp_path / "rules.yaml"
    write(path, V1)
    applied = Applied()
    audit = RuleAuditWriter(client, database)
    watcher = RulesFileWatcher(path, applied, metrics, audit=audit, poll_interval_s=0.2)
    await watcher.load_initial()
    before = len(audit.read())
    watcher.start()
    try:
        write(path, BAD)
        await wait_until(lambda: gauge(registry, "pwm_rules_last_reload_ok") == 0, timeout_s=5.0)
        assert gauge(registry, "pwm_rules_reload_errors_total") == 1
        assert len(applied.versions) == 1
        assert watcher.rules.rules[0].id == "pool-errors"
        (problem,) = watcher.last_errors
        assert str(path) in problem
        assert "pool-errors" in problem
        assert "'threshold'" in problem
        assert "refused" in caplog.text
        assert "pool-errors" in caplog.text
        # A refused version is reported once, not on every poll.
        await watcher.check_once()
        assert gauge(registry, "pwm_rules_reload_errors_total") == 1
        assert len(audit.read()) == before

        write(path, V2)
        await wait_until(lambda: len(applied.versions) == 2, timeout_s=5.0)
        assert gauge(registry, "pwm_rules_last_reload_ok") == 1
    finally:
        await watcher.stop()
    actions = [(r.rule_id, r.action) for r in audit.read()[before:]]
    assert actions == [("pool-errors", "changed"), ("slow-p95", "added")]


async def test_invalid_file_at_start_is_refused(
    tmp_path: Path, metrics: AlertingMetrics, registry: CollectorRegistry
) -> None:
    path = tmp_path / "rules.yaml"
    write(path, "rules:\n  - id: x\n    kind: threshold\n")
    watcher = RulesFileWatcher(path, Applied(), metrics)
    with pytest.raises(RulesFileError) as info:
        await watcher.load_initial()
    assert str(path) in str(info.value)
    assert any("field 'name'" in p for p in info.value.problems)
    assert gauge(registry, "pwm_rules_last_reload_ok") == 0
    with pytest.raises(RuntimeError, match="no rules loaded"):
        _ = watcher.rules


async def test_deleted_file_keeps_rules(
    tmp_path: Path, metrics: AlertingMetrics, registry: CollectorRegistry
) -> None:
    path = tmp_path / "rules.yaml"
    write(path, V1)
    applied = Applied()
    watcher = RulesFileWatcher(path, applied, metrics)
    await watcher.load_initial()
    path.unlink()
    assert await watcher.check_once() is False
    assert await watcher.check_once() is False
    assert gauge(registry, "pwm_rules_reload_errors_total") == 1
    assert gauge(registry, "pwm_rules_last_reload_ok") == 0
    assert len(watcher.rules.rules) == 1
    write(path, V2)
    assert await watcher.check_once() is True
    assert gauge(registry, "pwm_rules_last_reload_ok") == 1


async def test_audit_is_retried_until_the_table_exists(
    tmp_path: Path,
    metrics: AlertingMetrics,
    registry: CollectorRegistry,
    chdb_database: tuple[StorageClient, str],
) -> None:
    client, _ = chdb_database
    database = f"alerting_late_{uuid.uuid4().hex[:8]}"
    audit = RuleAuditWriter(client, database)
    path = tmp_path / "rules.yaml"
    write(path, V1)
    watcher = RulesFileWatcher(path, Applied(), metrics, audit=audit)
    await watcher.load_initial()  # the audit table does not exist yet: not fatal
    assert gauge(registry, "pwm_rules_audit_write_failures_total") == 1
    assert watcher.rules.rules[0].id == "pool-errors"

    settings = StorageSettings(dsn=client.dsn, database=database)
    ours = [m for m in load_migrations() if m.name in ALERTING_MIGRATIONS]
    Migrator(client, settings, migrations=ours).migrate()
    await watcher.check_once()  # nothing changed in the file, but the audit is due
    assert [(r.rule_id, r.action) for r in audit.read()] == [("pool-errors", "added")]
    await watcher.check_once()
    assert len(audit.read()) == 1
