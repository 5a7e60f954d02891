"""Helpers of the Grafana JSON datasource tests: fixtures, ranges, seeded alerts, REST twins."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.alerting.history import ClickHouseAlertHistory
from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import MINUTE_MS, WINDOW_MS
from tests.storage.storage_builders import proxy_id

Storage = tuple[StorageSettings, StorageClient]

FIXTURES = Path(__file__).parent / "fixtures"
NOW_MS = time.time_ns() // 1_000_000 // MINUTE_MS * MINUTE_MS
"""A minute boundary, recent enough for every table's TTL."""
NOW = datetime.fromtimestamp(NOW_MS / 1000, UTC)
HOUR_MS = 60 * MINUTE_MS
PROBLEM = "application/problem+json"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return body


def iso(ms: int) -> str:
    """Epoch ms as Grafana writes a range end (``2026-11-26T15:00:00.000Z``)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def with_range(body: dict[str, Any], start_ms: int, end_ms: int) -> dict[str, Any]:
    """``body`` with its range moved to ``[start_ms, end_ms)`` (``raw`` kept as sent)."""
    moved = dict(body)
    moved["range"] = {**body.get("range", {}), "from": iso(start_ms), "to": iso(end_ms)}
    return moved


def contract_events(now_ms: int, *, seed: int = 5) -> list[WireEvent]:
    """30 min of poolA and poolB in eu (the contract fixture's names), poolB failing more."""
    rng = random.Random(seed)
    out = []
    for i in range(2_000):
        pool = "poolA" if i % 2 else "poolB"
        ok = rng.random() < (0.98 if pool == "poolA" else 0.85)
        out.append(
            WireEvent(
                event_id=f"c{i}",
                ts_ms=now_ms - 30 * MINUTE_MS + rng.randrange(30 * MINUTE_MS - WINDOW_MS),
                pool=pool,
                region="eu",
                outcome=Outcome.SUCCESS if ok else Outcome.TIMEOUT,
                latency_ms=rng.lognormvariate(4.0, 0.6),
                source_host="host-2",
                proxy_id=proxy_id(pool, "eu", rng.randrange(5)),
                status_code=200 if ok else None,
            )
        )
    return out


def _alert(
    pool: str, status: AlertStatus, starts_at: datetime, *, severity: str = "page"
) -> AlertEvent:
    return AlertEvent(
        labels={
            "alertname": "PoolErrors",
            "rule_id": "pool-errors",
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


ALERT_STARTS_MS = {
    "mobile": NOW_MS - 10 * MINUTE_MS,
    "residential": NOW_MS - HOUR_MS,
    "isp": NOW_MS - 3 * 24 * HOUR_MS,
}
"""When each seeded incident started: mobile still firing, the others resolved after 5 min."""


def seed_alerts(storage: Storage) -> None:
    settings, client = storage
    history = ClickHouseAlertHistory(client, settings.database)
    at = {pool: datetime.fromtimestamp(ms / 1000, UTC) for pool, ms in ALERT_STARTS_MS.items()}
    history.write(
        [
            _alert("mobile", AlertStatus.FIRING, at["mobile"]),
            _alert("residential", AlertStatus.FIRING, at["residential"]),
            _alert("residential", AlertStatus.RESOLVED, at["residential"]),
            _alert("isp", AlertStatus.FIRING, at["isp"], severity="warning"),
            _alert("isp", AlertStatus.RESOLVED, at["isp"], severity="warning"),
        ]
    )


async def rest_series(
    http: httpx.AsyncClient, start_ms: int, end_ms: int, **params: Any
) -> dict[str, Any]:
    """``/api/v1/series`` over the same range, as the datasource's twin."""
    response = await http.get(
        "/api/v1/series",
        params={"start": iso(start_ms), "end": iso(end_ms), **params},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def datapoints(rest: dict[str, Any]) -> list[list[Any]]:
    """REST's ``[[ms, value]]`` as Grafana's ``[[value, ms]]``."""
    return [[value, ts] for ts, value in rest["points"]]
