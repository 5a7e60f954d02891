"""Grafana JSON datasource targets, answered by the one query layer.

Every target is a name (the ``target`` of a query) and a payload; :func:`plan` validates both
(pure, before any read) and the returned :class:`TargetPlan` reads through
:mod:`stream_app.storage.query_views` and :class:`~stream_app.storage.queries.StorageQueries`
(the functions REST v1 answers with), so a Grafana panel shows the numbers ``/api/v1`` gives:

- time series (``{"target", "datapoints": [[value, epoch ms], ...]}``, ``null`` where a step has
  no data): every :class:`~stream_app.storage.query_metrics.SeriesMetric` (``success_rate``,
  ``latency_p95_ms``...) per scope (:mod:`api.grafana_scopes`) or per proxy (payload
  ``proxy``), ``outcome_rate`` (payload ``outcome``) and ``errors_by_outcome`` (one series per
  failure outcome seen in the range). Tier and step are :func:`~.query_tiers.choose_tier`'s,
  with Grafana's ``maxDataPoints`` (at most 1,500) and ``intervalMs`` as REST's ``step_s``;
- tables (``{"type": "table", "columns", "rows"}``): ``pool_table`` (the latest closed window
  per pool x region, as ``/api/v1/summary``), ``top_proxies`` (``/api/v1/proxies``) and
  ``active_alerts`` (``/api/v1/alerts``);
- annotations: ``alert_annotations``, and any query Grafana runs for an annotation (``refId``
  ``Anno``): one row per alert incident overlapping the range (``time``, ``timeEnd``,
  ``title``, ``text``, ``tags``), from ``/api/v1/alerts/history``'s rows.

Synchronous once planned (storage calls block): run :meth:`TargetPlan.run` in a thread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.grafana_model import AdHocFilter, QueryTarget, payload_values
from api.grafana_scopes import GrafanaRequestError, Selection, select
from schemas.alerts import Severity
from schemas.events import Outcome
from schemas.rule_kinds import RULE_ID_PATTERN
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_alerts import AlertFilter, AlertRow
from stream_app.storage.query_metrics import SeriesMetric, metric_value
from stream_app.storage.query_tiers import DEFAULT_MAX_POINTS, Retention, choose_tier
from stream_app.storage.query_views import offenders_view, series_view, summary_view

__all__ = [
    "ANNOTATION_REF_ID",
    "TARGETS",
    "QuerySpan",
    "Reader",
    "TargetPlan",
    "TargetSpec",
    "alert_incidents",
    "incidents",
    "plan",
]

ANNOTATION_REF_ID = "Anno"
"""The ``refId`` Grafana gives the query of an annotation."""

Json = dict[str, Any]

_SCOPE = frozenset({"pool", "region", "group_by"})
_ALERT = frozenset({"pool", "region", "severity", "rule_id"})
_FAILURES = tuple(o for o in Outcome if o is not Outcome.SUCCESS)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target Grafana may ask for: its kind, what it shows, the payload keys it takes."""

    name: str
    kind: str  # "timeseries" | "table" | "annotations"
    label: str
    payload: frozenset[str]


def _series_specs() -> list[TargetSpec]:
    specs = [
        TargetSpec(m.value, "timeseries", m.value.replace("_", " "), _SCOPE | {"proxy"})
        for m in SeriesMetric
        if m is not SeriesMetric.OUTCOME_RATE
    ]
    specs.append(
        TargetSpec(
            "outcome_rate", "timeseries", "share of one outcome", _SCOPE | {"proxy", "outcome"}
        )
    )
    specs.append(
        TargetSpec("errors_by_outcome", "timeseries", "error rate by failure outcome", _SCOPE)
    )
    return specs


TARGETS: dict[str, TargetSpec] = {
    s.name: s
    for s in [
        *_series_specs(),
        TargetSpec(
            "pool_table", "table", "latest closed window per pool x region", _SCOPE - {"group_by"}
        ),
        TargetSpec(
            "top_proxies",
            "table",
            "worst proxies of a pool",
            frozenset({"pool", "region", "by", "limit", "min_requests"}),
        ),
        TargetSpec("active_alerts", "table", "alerts firing now", _ALERT),
        TargetSpec("alert_annotations", "annotations", "alert incidents", _ALERT),
    ]
}
"""Every target, by name (``/metrics`` lists them)."""


@dataclass(frozen=True, slots=True)
class Reader:
    """The query layer and the settings REST v1 reads with."""

    queries: StorageQueries
    retention: Retention
    window_s: int
    settle_ms: int
    staleness_s: float


@dataclass(frozen=True, slots=True)
class QuerySpan:
    """The range of a query, the clock, and Grafana's point budget."""

    start_ms: int
    end_ms: int
    now_ms: int
    max_points: int = DEFAULT_MAX_POINTS
    min_step_s: int = 0

    @classmethod
    def of(
        cls,
        start_ms: int,
        end_ms: int,
        now_ms: int,
        *,
        max_data_points: int | None,
        interval_ms: int | None,
    ) -> QuerySpan:
        """``maxDataPoints`` caps the points (never above REST's 1,500), ``intervalMs`` is
        the smallest step Grafana wants (REST's ``step_s``)."""
        max_points = DEFAULT_MAX_POINTS
        if max_data_points:
            max_points = min(max(max_data_points, 2), DEFAULT_MAX_POINTS)
        min_step_s = 0
        if interval_ms:
            min_step_s = min(math.ceil(interval_ms / 1000), 365 * 86_400)
        return cls(start_ms, end_ms, now_ms, max_points, min_step_s)


def _table(columns: Iterable[tuple[str, str]], rows: list[list[Any]], ref_id: str | None) -> Json:
    out: Json = {
        "type": "table",
        "columns": [{"text": text, "type": kind} for text, kind in columns],
        "rows": rows,
    }
    if ref_id is not None:
        out["refId"] = ref_id
    return out


def _series(name: str, points: Iterable[tuple[int, float | None]], ref_id: str | None) -> Json:
    out: Json = {"target": name, "datapoints": [[value, ts] for ts, value in points]}
    if ref_id is not None:
        out["refId"] = ref_id
    return out


def _one(payload: Mapping[str, Any], key: str) -> str | None:
    try:
        values = payload_values(payload.get(key))
    except ValueError as exc:
        raise GrafanaRequestError(f"payload {key}: {exc}") from exc
    if values is None:
        return None
    if len(values) != 1:
        raise GrafanaRequestError(f"payload {key}: one value expected")
    return values[0]


def _int(payload: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = payload.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise GrafanaRequestError(f"payload {key}: not a whole number") from exc
    if not low <= value <= high:
        raise GrafanaRequestError(f"payload {key}: must be within {low}..{high}")
    return value


def _choice(text: str | None, options: Iterable[str], key: str) -> str | None:
    allowed = list(options)
    if text is not None and text not in allowed:
        raise GrafanaRequestError(f"payload {key}: {text[:64]!r} is not one of {allowed}")
    return text


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """A validated target: what to read and how to answer."""

    spec: TargetSpec
    ref_id: str | None
    selection: Selection
    options: Mapping[str, Any] = field(default_factory=dict)

    def run(self, reader: Reader, span: QuerySpan) -> list[Json]:
        """Read and shape the answer (blocking: call it in a thread)."""
        answer: Callable[[TargetPlan, Reader, QuerySpan], list[Json]] = _ANSWERS.get(
            self.spec.name, _metric_series
        )
        return answer(self, reader, span)

    def known(self, reader: Reader, span: QuerySpan) -> Callable[[], list[tuple[str, str]]]:
        return lambda: reader.queries.pools_regions(span.start_ms)


def plan(target: QueryTarget, filters: Iterable[AdHocFilter]) -> TargetPlan:
    """Validate ``target`` (its name, payload and the request's ad-hoc ``filters``)."""
    annotation = target.ref_id == ANNOTATION_REF_ID
    name = "alert_annotations" if annotation else (target.target or "")
    spec = TARGETS.get(name)
    if spec is None:
        raise GrafanaRequestError(
            f"target {name[:128]!r} is unknown; POST /grafana/metrics lists the targets"
        )
    payload = target.payload
    unknown = sorted(set(payload) - spec.payload)
    if unknown and not annotation:
        raise GrafanaRequestError(
            f"payload key {unknown[0][:64]!r} is not one of {sorted(spec.payload)} ({name})"
        )
    selection = select(payload, filters, proxies="proxy" in spec.payload)
    options: dict[str, Any] = {}
    if name == "outcome_rate":
        outcome = _one(payload, "outcome")
        if outcome is None:
            raise GrafanaRequestError("payload outcome: required by outcome_rate")
        _choice(outcome, [o.value for o in _FAILURES], "outcome")
        options["outcome"] = Outcome(outcome)
    elif name == "top_proxies":
        selection.single("region")
        if selection.single("pool") is None:
            raise GrafanaRequestError("payload pool: top_proxies needs one pool")
        options["by"] = (
            _choice(_one(payload, "by"), ("error_rate", "latency_p95_ms"), "by") or "error_rate"
        )
        options["limit"] = _int(payload, "limit", 10, 1, 50)
        options["min_requests"] = _int(payload, "min_requests", 10, 1, 1_000_000_000)
    elif spec.payload == _ALERT:
        options["severity"] = _choice(
            _one(payload, "severity"), [s.value for s in Severity], "severity"
        )
        rule_id = _one(payload, "rule_id")
        if rule_id is not None and re.fullmatch(RULE_ID_PATTERN, rule_id) is None:
            raise GrafanaRequestError("payload rule_id: not a rule id")
        options["rule_id"] = rule_id
    return TargetPlan(spec, target.ref_id, selection, options)


def _metric_series(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    metric = SeriesMetric("outcome_rate" if p.spec.name == "outcome_rate" else p.spec.name)
    outcome: Outcome | None = p.options.get("outcome")
    if p.selection.proxies:
        return _proxy_series(p, reader, span, metric, outcome)
    out = []
    for scope in p.selection.scopes(p.known(reader, span)):
        view = series_view(
            reader.queries,
            metric,
            start_ms=span.start_ms,
            end_ms=span.end_ms,
            now_ms=span.now_ms,
            retention=reader.retention,
            staleness_s=reader.staleness_s,
            window_s=reader.window_s,
            pool=scope.pool,
            region=scope.region,
            outcome=outcome,
            min_step_s=span.min_step_s,
            max_points=span.max_points,
        )
        name = p.spec.name if outcome is None else f"{outcome.value}_rate"
        out.append(_series(name + scope.labels(), view.points, p.ref_id))
    return out


def _proxy_series(
    p: TargetPlan, reader: Reader, span: QuerySpan, metric: SeriesMetric, outcome: Outcome | None
) -> list[Json]:
    """One series per proxy from ``proxy_1m`` (steps of at least 1 min, as ``/proxies``)."""
    proxies = p.selection.proxies or []
    choice = choose_tier(
        span.start_ms,
        span.end_ms,
        now_ms=span.now_ms,
        retention=reader.retention,
        max_points=span.max_points,
        min_step_s=max(60, span.min_step_s),
        window_s=reader.window_s,
    )
    pool, region = p.selection.single("pool"), p.selection.single("region")
    by_proxy = reader.queries.proxy_series(choice, proxies, pool=pool, region=region)
    return [
        _series(
            f"{p.spec.name}{{proxy={proxy}}}",
            [
                (ms, metric_value(steps.get(ms), metric, span_s=choice.step_s, outcome=outcome))
                for ms in choice.steps_ms()
            ],
            p.ref_id,
        )
        for proxy, steps in by_proxy.items()
    ]


def _errors_by_outcome(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    """Per scope, the share of each failure outcome per step (REST's ``outcome_rate``, read
    once for all outcomes); outcomes that never happened in the range are left out."""
    choice = choose_tier(
        span.start_ms,
        span.end_ms,
        now_ms=span.now_ms,
        retention=reader.retention,
        max_points=span.max_points,
        min_step_s=span.min_step_s,
        window_s=reader.window_s,
    )
    out = []
    for scope in p.selection.scopes(p.known(reader, span)):
        by_step = reader.queries.series(choice, pool=scope.pool, region=scope.region)
        for outcome in _FAILURES:
            if not any(t.outcomes.get(outcome.value, 0) for t in by_step.values()):
                continue
            points = [
                (
                    ms,
                    metric_value(
                        by_step.get(ms),
                        SeriesMetric.OUTCOME_RATE,
                        span_s=choice.step_s,
                        outcome=outcome,
                    ),
                )
                for ms in choice.steps_ms()
            ]
            out.append(_series(f"{outcome.value}_rate{scope.labels()}", points, p.ref_id))
    return out


def _in(selection: Selection, pool: str, region: str) -> bool:
    for dimension, value in (("pool", pool), ("region", region)):
        include = selection.include[dimension]
        if (include is not None and value not in include) or value in selection.exclude[dimension]:
            return False
    return True


def _pool_table(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    view = summary_view(
        reader.queries,
        now_ms=span.now_ms,
        window_s=reader.window_s,
        settle_ms=reader.settle_ms,
        staleness_s=reader.staleness_s,
    )
    rows = []
    for s in view.scopes:
        if not _in(p.selection, s.pool, s.region):
            continue
        m = s.metrics
        rows.append(
            [
                s.window_start_ms,
                s.pool,
                s.region,
                s.status,
                None if m is None else m.requests,
                None if m is None else m.success_rate,
                None if m is None else m.error_rate,
                None if m is None else m.latency_ms.p50,
                None if m is None else m.latency_ms.p95,
                None if m is None else m.latency_ms.p99,
                None if m is None else m.throughput_rps,
                s.active_alerts,
                s.freshness.age_s,
            ]
        )
    columns = [("Time", "time"), ("pool", "string"), ("region", "string"), ("status", "string")]
    columns += [
        (c, "number")
        for c in (
            "requests",
            "success_rate",
            "error_rate",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "throughput_rps",
            "active_alerts",
            "age_s",
        )
    ]
    return [_table(columns, rows, p.ref_id)]


def _top_proxies(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    view = offenders_view(
        reader.queries,
        pool=p.selection.single("pool") or "",
        region=p.selection.single("region"),
        order_by=p.options["by"],
        start_ms=span.start_ms,
        end_ms=span.end_ms,
        now_ms=span.now_ms,
        retention=reader.retention,
        limit=p.options["limit"],
        min_requests=p.options["min_requests"],
    )
    rows = [
        [
            o.proxy_id,
            o.pool,
            o.region,
            o.metrics.requests,
            o.metrics.error_rate,
            o.metrics.latency_ms.p50,
            o.metrics.latency_ms.p95,
            o.metrics.latency_ms.p99,
            o.metrics.throughput_rps,
        ]
        for o in view.proxies
    ]
    columns = [("proxy_id", "string"), ("pool", "string"), ("region", "string")]
    columns += [
        (c, "number")
        for c in (
            "requests",
            "error_rate",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "throughput_rps",
        )
    ]
    return [_table(columns, rows, p.ref_id)]


def _alert_filter(p: TargetPlan) -> AlertFilter:
    def one(dimension: str) -> str | None:
        include = p.selection.include[dimension]
        return next(iter(include)) if include is not None and len(include) == 1 else None

    return AlertFilter(
        pool=one("pool"),
        region=one("region"),
        rule_id=p.options.get("rule_id"),
        severity=p.options.get("severity"),
    )


def _active_alerts(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    alerts = reader.queries.active_alerts(_alert_filter(p))
    rows = [
        [
            a.starts_at_ms,
            a.alertname,
            a.rule_id,
            a.severity,
            a.pool,
            a.region,
            a.proxy_id,
            a.value,
            a.threshold,
            a.annotations.get("summary", ""),
        ]
        for a in alerts
        if _in(p.selection, a.pool, a.region)
    ]
    columns = [("Time", "time")]
    columns += [(c, "string") for c in ("alertname", "rule_id", "severity", "pool", "region")]
    columns += [("proxy_id", "string"), ("value", "number"), ("threshold", "number")]
    columns += [("summary", "string")]
    return [_table(columns, rows, p.ref_id)]


def incidents(rows: Iterable[AlertRow]) -> list[Json]:
    """One annotation per incident (fingerprint, start) of alert history ``rows`` (newest
    change first): ``time``, ``timeEnd`` (null while firing), ``title``, ``text``, ``tags``."""
    seen: dict[tuple[str, int], Json] = {}
    for row in rows:
        key = (row.fingerprint, row.starts_at_ms)
        if key in seen:
            continue
        summary = row.annotations.get("summary") or row.annotations.get("description") or ""
        value = "" if row.value is None else f" value {row.value:.4g}"
        threshold = "" if row.threshold is None else f", threshold {row.threshold:.4g}"
        scope = "/".join(v for v in (row.pool, row.region, row.proxy_id) if v) or "fleet"
        seen[key] = {
            "time": row.starts_at_ms,
            "timeEnd": row.ends_at_ms,
            "title": f"{row.alertname} ({row.severity})",
            "text": f"{row.status}: {scope}{': ' + summary if summary else ''}{value}{threshold}",
            "tags": [
                t
                for t in (
                    row.status,
                    f"severity:{row.severity}",
                    f"rule:{row.rule_id}",
                    f"pool:{row.pool}" if row.pool else "",
                    f"region:{row.region}" if row.region else "",
                )
                if t
            ],
        }
    return sorted(seen.values(), key=lambda e: (e["time"], e["title"]))


def alert_incidents(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    """The incidents of :func:`incidents` overlapping the span, within the selection."""
    rows = reader.queries.alert_history(
        _alert_filter(p), start_ms=span.start_ms, end_ms=span.end_ms
    )
    return incidents(r for r in rows if _in(p.selection, r.pool, r.region))


def _annotations(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    events = alert_incidents(p, reader, span)
    columns = [("time", "time"), ("timeEnd", "time"), ("title", "string")]
    columns += [("text", "string"), ("tags", "string")]
    rows = [[e["time"], e["timeEnd"], e["title"], e["text"], ",".join(e["tags"])] for e in events]
    return [_table(columns, rows, p.ref_id)]


_ANSWERS: dict[str, Callable[[TargetPlan, Reader, QuerySpan], list[Json]]] = {
    "errors_by_outcome": _errors_by_outcome,
    "pool_table": _pool_table,
    "top_proxies": _top_proxies,
    "active_alerts": _active_alerts,
    "alert_annotations": _annotations,
}
