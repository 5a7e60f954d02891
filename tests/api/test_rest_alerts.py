"""/api/v1/alerts (firing now) and /api/v1/alerts/history over the stored alert history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from schemas.alerts import AlertEvent, AlertStatus
from stream_app.alerting.history import ClickHouseAlertHistory
from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import build_app, client, seeded_history, write

Storage = tuple[StorageSettings, StorageClient]
NOW_MS = time.time_ns() // 1_000_000
NOW = datetime.fromtimestamp(NOW_MS / 1000, UTC)


def _event(
    pool: str,
    status: AlertStatus,
    starts_at: datetime,
    *,
    rule_id: str = "pool-errors",
    severity: str = "page",
) -> AlertEvent:
    return AlertEvent(
        labels={
            "alertname": "PoolErrors",
            "rule_id": rule_id,
            "pool": pool,
            "region": "eu-west",
            "severity": severity,
        },
        annotations={"summary": f"errors in {pool}"},
        status=status,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=5) if status is AlertStatus.RESOLVED else None,
        value=0.3,
        threshold=0.1,
        window_start_ms=int(starts_at.timestamp() * 1000) - 10_000,
        window_end_ms=int(starts_at.timestamp() * 1000),
    )


def _seed(storage: Storage) -> None:
    settings, storage_client = storage
    history = ClickHouseAlertHistory(storage_client, settings.database)
    one_hour_ago = NOW - timedelta(hours=1)
    history.write(
        [
            _event("mobile", AlertStatus.FIRING, NOW - timedelta(minutes=10)),
            _event("residential", AlertStatus.FIRING, one_hour_ago),
            _event("residential", AlertStatus.RESOLVED, one_hour_ago),
            _event("isp", AlertStatus.FIRING, NOW - timedelta(days=3), severity="warning"),
            _event("isp", AlertStatus.RESOLVED, NOW - timedelta(days=3), severity="warning"),
        ]
    )


async def test_active_alerts_are_those_whose_latest_change_fires(api_storage: Storage) -> None:
    _seed(api_storage)
    async with client(build_app(api_storage, NOW_MS)) as http:
        active = (await http.get("/api/v1/alerts")).json()["alerts"]
        none = (await http.get("/api/v1/alerts", params={"pool": "residential"})).json()
        summary = (await http.get("/api/v1/summary")).json()
    assert [(a["pool"], a["status"]) for a in active] == [("mobile", "firing")]
    alert = active[0]
    assert alert["ends_at_ms"] is None
    assert alert["rule_id"] == "pool-errors"
    assert alert["value"] == 0.3
    assert alert["starts_at_ms"] == NOW_MS - 600_000
    assert none["alerts"] == []
    assert summary["scopes"] == []  # alerts alone make no scope: only stored windows do


async def test_history_covers_incidents_overlapping_the_range(api_storage: Storage) -> None:
    _seed(api_storage)
    async with client(build_app(api_storage, NOW_MS)) as http:
        day = (await http.get("/api/v1/alerts/history")).json()["alerts"]
        week = (await http.get("/api/v1/alerts/history", params={"range": "7d"})).json()
        warnings = (
            await http.get("/api/v1/alerts/history", params={"range": "7d", "severity": "warning"})
        ).json()
        bad = await http.get("/api/v1/alerts/history", params={"severity": "urgent"})
    assert [(a["pool"], a["status"]) for a in day] == [
        ("mobile", "firing"),
        ("residential", "resolved"),
        ("residential", "firing"),
    ]
    assert len(week["alerts"]) == 5
    assert {a["pool"] for a in warnings["alerts"]} == {"isp"}
    assert bad.status_code == 422


async def test_a_firing_alert_marks_its_scope_alerting_in_the_summary(
    api_storage: Storage,
) -> None:
    now_ms = NOW_MS // 10_000 * 10_000
    write(api_storage, seeded_history(now_ms).events)
    _seed(api_storage)  # mobile/eu-west fires
    async with client(build_app(api_storage, now_ms)) as http:
        body = (await http.get("/api/v1/summary")).json()
    scopes = {(s["pool"], s["region"]): s for s in body["scopes"]}
    assert scopes[("mobile", "eu-west")]["status"] == "alerting"
    assert scopes[("mobile", "eu-west")]["active_alerts"] == 1
    assert scopes[("residential", "eu-west")]["status"] == "ok"  # its alert resolved
