"""REST v1 alerts: the ones firing now and the history of state changes (read role)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.auth import AUTH_RESPONSES, Role, require_role
from api.routes.params import EndParam, Pool, RangeParam, Region, StartParam, time_range
from api.routes.query import run_query
from schemas.alerts import Severity
from schemas.rule_kinds import RULE_ID_PATTERN
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_alerts import AlertFilter, AlertRow

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/alerts",
    tags=["alerts"],
    dependencies=[Depends(require_role(Role.READ))],
    responses=AUTH_RESPONSES,
)


class Alert(BaseModel):
    """One alert state change (times in epoch ms); ``ends_at_ms`` null while firing."""

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

    @classmethod
    def of(cls, row: AlertRow) -> Alert:
        return cls.model_validate(dataclasses.asdict(row))


class AlertsView(BaseModel):
    alerts: list[Alert]


RuleId = Annotated[
    str | None, Query(pattern=RULE_ID_PATTERN, max_length=128, description="Rule id")
]
SeverityParam = Annotated[Severity | None, Query(description="Severity")]
Limit = Annotated[int, Query(ge=1, le=10_000, description="At most this many rows")]


def _filter(
    pool: str | None, region: str | None, rule_id: str | None, severity: Severity | None
) -> AlertFilter:
    return AlertFilter(
        pool=pool,
        region=region,
        rule_id=rule_id,
        severity=None if severity is None else severity.value,
    )


def _queries(request: Request) -> StorageQueries:
    queries: StorageQueries = request.app.state.queries
    return queries


@router.get("", summary="Alerts firing now", response_model=AlertsView)
async def active(
    request: Request,
    pool: Pool = None,
    region: Region = None,
    rule_id: RuleId = None,
    severity: SeverityParam = None,
    limit: Limit = 1_000,
) -> AlertsView:
    where = _filter(pool, region, rule_id, severity)
    queries = _queries(request)
    rows = await run_query(request, lambda: queries.active_alerts(where, limit=limit))
    return AlertsView(alerts=[Alert.of(r) for r in rows])


@router.get(
    "/history",
    summary="Alert state changes whose incident overlaps the range",
    response_model=AlertsView,
)
async def history(
    request: Request,
    pool: Pool = None,
    region: Region = None,
    rule_id: RuleId = None,
    severity: SeverityParam = None,
    start: StartParam = None,
    end: EndParam = None,
    range_: RangeParam = None,
    limit: Limit = 1_000,
) -> AlertsView:
    span = time_range(request, start, end, range_, default_range="24h")
    where = _filter(pool, region, rule_id, severity)
    queries = _queries(request)
    rows = await run_query(
        request,
        lambda: queries.alert_history(
            where, start_ms=span.start_ms, end_ms=span.end_ms, limit=limit
        ),
    )
    return AlertsView(alerts=[Alert.of(r) for r in rows])
