"""Alerts as readers see them: the ones firing now and the history of state changes.

Reads ``alert_history`` (migration ``0010_alert_history``; written by
:class:`stream_app.alerting.history.ClickHouseAlertHistory`): one row per delivered state change.
An alert is *active* when the newest row of its fingerprint is ``firing``; an incident
(fingerprint, start) ends at the ``ends_at`` of its resolved row. Filters are server-side
parameters; an empty filter matches everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream_app.storage.client import StorageClient

__all__ = [
    "ALERT_COLUMNS",
    "ALERT_TABLE",
    "AlertFilter",
    "AlertRow",
    "active_alerts",
    "alert_history",
]

ALERT_TABLE = "alert_history"

ALERT_COLUMNS = (
    "recorded_at",
    "fingerprint",
    "status",
    "alertname",
    "rule_id",
    "severity",
    "pool",
    "region",
    "proxy_id",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "value",
    "threshold",
    "baseline",
    "window_start",
    "window_end",
)
"""The columns of ``alert_history`` every reader decodes (the writer adds ``generator_url``)."""


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to read (None: any)."""

    pool: str | None = None
    region: str | None = None
    rule_id: str | None = None
    severity: str | None = None

    def clauses(self) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        parameters: dict[str, Any] = {}
        for column in ("pool", "region", "rule_id", "severity"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = {{{column}:String}}")
                parameters[column] = value
        return clauses, parameters


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One stored alert state change (times in epoch ms)."""

    recorded_at_ms: int
    fingerprint: str
    status: str
    alertname: str
    rule_id: str
    severity: str
    pool: str
    region: str
    proxy_id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at_ms: int
    ends_at_ms: int | None
    value: float | None
    threshold: float | None
    baseline: float | None
    window_start_ms: int | None
    window_end_ms: int | None


def _ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _row(row: Mapping[str, Any]) -> AlertRow:
    return AlertRow(
        recorded_at_ms=_ms(row["recorded_at"]) or 0,
        fingerprint=str(row["fingerprint"]),
        status=str(row["status"]),
        alertname=str(row["alertname"]),
        rule_id=str(row["rule_id"]),
        severity=str(row["severity"]),
        pool=str(row["pool"]),
        region=str(row["region"]),
        proxy_id=str(row["proxy_id"]),
        labels={str(k): str(v) for k, v in row["labels"].items()},
        annotations={str(k): str(v) for k, v in row["annotations"].items()},
        starts_at_ms=_ms(row["starts_at"]) or 0,
        ends_at_ms=_ms(row["ends_at"]),
        value=row["value"],
        threshold=row["threshold"],
        baseline=row["baseline"],
        window_start_ms=_ms(row["window_start"]),
        window_end_ms=_ms(row["window_end"]),
    )


def active_alerts(
    client: StorageClient, db: str, where: AlertFilter, *, limit: int = 1_000
) -> list[AlertRow]:
    """Alerts whose newest state change is ``firing``, newest first."""
    clauses, parameters = where.clauses()
    filters = " AND ".join(clauses) or "1"
    rows = client.named_rows(
        f"""SELECT {", ".join(ALERT_COLUMNS)} FROM (
                SELECT * FROM {db}.{ALERT_TABLE}
                ORDER BY fingerprint, starts_at DESC, status DESC, recorded_at DESC
                LIMIT 1 BY fingerprint
            )
            WHERE status = 'firing' AND {filters}
            ORDER BY starts_at DESC, fingerprint
            LIMIT {{limit:UInt32}}""",  # noqa: S608
        parameters={**parameters, "limit": limit},
    )
    return [_row(row) for row in rows]


def alert_history(
    client: StorageClient,
    db: str,
    where: AlertFilter,
    *,
    start_ms: int,
    end_ms: int,
    limit: int = 1_000,
) -> list[AlertRow]:
    """State changes of the incidents overlapping ``[start_ms, end_ms]``, newest first.

    An incident (fingerprint, start) ends at the ``ends_at`` of its resolved row; one without
    is still open. Its rows come newest change first (resolved before firing).
    """
    clauses, parameters = where.clauses()
    filters = " AND ".join(clauses) or "1"
    rows = client.named_rows(
        f"""SELECT {", ".join(ALERT_COLUMNS)} FROM {db}.{ALERT_TABLE}
            WHERE {filters}
              AND starts_at <= fromUnixTimestamp64Milli({{end_ms:Int64}}, 'UTC')
              AND (fingerprint, starts_at) GLOBAL IN (
                  SELECT fingerprint, starts_at FROM {db}.{ALERT_TABLE}
                  WHERE {filters}
                    AND starts_at <= fromUnixTimestamp64Milli({{end_ms:Int64}}, 'UTC')
                  GROUP BY fingerprint, starts_at
                  HAVING max(ends_at) IS NULL
                      OR max(ends_at) >= fromUnixTimestamp64Milli({{start_ms:Int64}}, 'UTC')
              )
            ORDER BY starts_at DESC, fingerprint, status DESC, recorded_at DESC
            LIMIT {{limit:UInt32}}""",  # noqa: S608
        parameters={**parameters, "start_ms": start_ms, "end_ms": end_ms, "limit": limit},
    )
    return [_row(row) for row in rows]
