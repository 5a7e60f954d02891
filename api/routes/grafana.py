"""The Grafana JSON datasource (simpod-json-datasource) at ``/grafana`` (read role).

HTTP concerns only: bodies are validated by :mod:`api.grafana_model`, targets planned and
answered by :mod:`api.grafana_targets` (through the query layer REST v1 reads with), the lists
of :mod:`api.grafana_catalog`. Point the datasource's URL at ``http://<api>/grafana`` and give
it a read token (``Authorization: Bearer ...``); see docs/api.md.

A query Grafana sent that cannot be answered (unknown target, payload key, filter key or
operator) is a 400 problem naming it; a malformed body a 422; storage failing a 503. Never 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from api.auth import AUTH_RESPONSES, Role, require_role
from api.grafana_catalog import (
    metric_configs,
    payload_options,
    tag_keys,
    tag_values,
    variable_values,
)
from api.grafana_model import (
    AnnotationRequest,
    GrafanaRange,
    MetricsRequest,
    PayloadOptionsRequest,
    QueryRequest,
    QueryTarget,
    TagValuesRequest,
    VariableRequest,
)
from api.grafana_scopes import GrafanaRequestError
from api.grafana_tables import alert_incidents
from api.grafana_targets import (
    ANNOTATION_REF_ID,
    TARGETS,
    QuerySpan,
    Reader,
    TargetPlan,
    plan,
)
from api.routes.params import now_ms
from api.routes.query import cached_query, run_query
from api.settings import ApiSettings
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_tiers import Retention

__all__ = ["router"]

router = APIRouter(
    prefix="/grafana",
    tags=["grafana"],
    dependencies=[Depends(require_role(Role.READ))],
    responses={
        **AUTH_RESPONSES,
        400: {"description": "A query that cannot be answered as asked (problem+json)"},
        422: {"description": "A malformed body (problem+json)"},
        503: {"description": "Storage did not answer (problem+json)"},
    },
)

T = TypeVar("T")
Json = dict[str, Any]

_DAY_MS = 86_400_000
_NAMES_DAYS = 30
"""Pools and regions listed: those with data in the range, or in the last 30 days."""


def _queries(request: Request) -> StorageQueries:
    queries: StorageQueries = request.app.state.queries
    return queries


def _reader(request: Request) -> Reader:
    settings: ApiSettings = request.app.state.settings
    retention: Retention = request.app.state.retention
    return Reader(
        _queries(request),
        retention,
        window_s=settings.window_s,
        settle_ms=settings.settle_ms,
        staleness_s=settings.staleness_s,
    )


def _bad(exc: GrafanaRequestError | ValueError) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


async def _answer(request: Request, key: tuple[Hashable, ...], call: Callable[[], T]) -> T:
    """:func:`cached_query`, a :class:`GrafanaRequestError` raised while answering -> 400."""
    try:
        return await cached_query(request, key, call)
    except GrafanaRequestError as exc:
        raise _bad(exc) from exc


def _span_ms(request: Request, grafana_range: GrafanaRange | None, days: int) -> tuple[int, int]:
    if grafana_range is not None:
        return grafana_range.from_ms, grafana_range.to_ms
    now = now_ms(request)
    return now - days * _DAY_MS, now


@router.get("", summary="Health (the datasource's Save & test)", include_in_schema=False)
@router.get("/", summary="Health (the datasource's Save & test)")
async def health() -> Json:
    return {"status": "ok", "datasource": "proxywhirl-metrics"}


@router.post("/metrics", summary="The targets a query may name, with their payloads")
async def metrics(body: Annotated[MetricsRequest | None, Body()] = None) -> list[Json]:
    return metric_configs(None if body is None else body.metric)


@router.post("/metric-payload-options", summary="The options of one payload of a target")
async def metric_payload_options(request: Request, body: PayloadOptionsRequest) -> list[Json]:
    spec = TARGETS.get(body.metric or "")
    if spec is not None and body.name not in spec.payload:
        raise HTTPException(
            status_code=400,
            detail=f"payload name {body.name!r}: {body.metric} does not take it",
        )
    start_ms, end_ms = _span_ms(request, None, 1)
    since_ms = now_ms(request) - _NAMES_DAYS * _DAY_MS
    queries, payload = _queries(request), body.payload
    key = (body.name, json.dumps(payload, sort_keys=True, default=str))
    return await _answer(
        request,
        key,
        lambda: payload_options(
            queries, body.name, payload, since_ms=since_ms, start_ms=start_ms, end_ms=end_ms
        ),
    )


def _plans(body: QueryRequest) -> list[tuple[QueryTarget, TargetPlan]]:
    """Every shown target planned (Grafana leaves out hidden ones; an empty query row has no
    ``target``), before anything is read: one bad target refuses the request."""
    filters = body.ad_hoc
    plans = []
    for target in body.targets:
        if target.hide or (target.target is None and target.ref_id != ANNOTATION_REF_ID):
            continue
        try:
            plans.append((target, plan(target, filters)))
        except GrafanaRequestError as exc:
            raise _bad(exc) from exc
    return plans


def _runner(planned: TargetPlan, reader: Reader, span: QuerySpan) -> Callable[[], list[Json]]:
    return lambda: planned.run(reader, span)


@router.post(
    "/query",
    summary="Time series, tables and alert annotations of a panel's targets over its range",
)
async def query(request: Request, body: QueryRequest) -> list[Json]:
    plans = _plans(body)
    span = QuerySpan.of(
        body.range.from_ms,
        body.range.to_ms,
        now_ms(request),
        max_data_points=body.max_data_points,
        interval_ms=body.interval_ms,
    )
    reader = _reader(request)
    filters = tuple((f.key, f.operator, f.value, tuple(f.values or ())) for f in body.ad_hoc)
    out: list[Json] = []
    for target, planned in plans:
        key = (
            planned.spec.name,
            planned.ref_id,
            json.dumps(target.payload, sort_keys=True, default=str),
            filters,
            span.start_ms,
            span.end_ms,
            span.max_points,
            span.min_step_s,
        )
        out.extend(await _answer(request, key, _runner(planned, reader, span)))
    return out


@router.post("/variable", summary="Values of a query variable: pools, regions, proxies")
async def variable(request: Request, body: VariableRequest) -> list[Json]:
    start_ms, end_ms = _span_ms(request, body.range, 1)
    since_ms = min(start_ms, now_ms(request) - _NAMES_DAYS * _DAY_MS)
    queries, payload = _queries(request), body.payload
    key = (json.dumps(payload, sort_keys=True, default=str), start_ms, end_ms)
    return await _answer(
        request,
        key,
        lambda: variable_values(
            queries, payload, since_ms=since_ms, start_ms=start_ms, end_ms=end_ms
        ),
    )


@router.post("/tag-keys", summary="Ad-hoc filter keys")
async def keys(body: Annotated[dict[str, Any] | None, Body()] = None) -> list[Json]:
    return tag_keys()


@router.post("/tag-values", summary="Values of one ad-hoc filter key")
async def values(request: Request, body: TagValuesRequest) -> list[Json]:
    since_ms = now_ms(request) - _NAMES_DAYS * _DAY_MS
    queries, filters = _queries(request), body.filters or []
    key = (body.key, tuple((f.key, f.operator, f.value) for f in filters))
    return await _answer(
        request, key, lambda: tag_values(queries, body.key, filters, since_ms=since_ms)
    )


@router.post("/annotations", summary="Alert incidents (the plugin's legacy annotation call)")
async def legacy_annotations(request: Request, body: AnnotationRequest) -> list[Json]:
    try:
        target = QueryTarget.model_validate(
            {"target": "alert_annotations", "payload": body.payload}
        )
        planned = plan(target, ())
    except (GrafanaRequestError, ValueError) as exc:
        raise _bad(exc) from exc
    span = QuerySpan(body.range.from_ms, body.range.to_ms, now_ms(request))
    reader = _reader(request)
    events = await run_query(request, lambda: alert_incidents(planned, reader, span))
    return [{"annotation": body.annotation, **e} for e in events]
