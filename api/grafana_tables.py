"""Grafana JSON datasource tables and annotations: the latest window per scope, the worst
proxies of a pool, the alerts firing now and the alert incidents of a range, each read through
the view REST v1 answers with (``/api/v1/summary``, ``/proxies``, ``/alerts``,
``/alerts/history``). Blocking: call from a thread."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from api.grafana_reads import Json, QuerySpan, Reader, in_selection, table
from stream_app.storage.query_alerts import AlertFilter, AlertRow
from stream_app.storage.query_views import offenders_view, summary_view

if TYPE_CHECKING:
    from api.grafana_targets import TargetPlan

__all__ = [
    "active_alerts",
    "alert_incidents",
    "annotation_table",
    "incidents",
    "pool_table",
    "top_proxies",
]


def pool_table(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    view = summary_view(
        reader.queries,
        now_ms=span.now_ms,
        window_s=reader.window_s,
        settle_ms=reader.settle_ms,
        staleness_s=reader.staleness_s,
    )
    rows = []
    for s in view.scopes:
        if not in_selection(p.selection, s.pool, s.region):
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
    return [table(columns, rows, p.ref_id)]


def top_proxies(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
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
    return [table(columns, rows, p.ref_id)]


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


def active_alerts(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
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
        if in_selection(p.selection, a.pool, a.region)
    ]
    columns = [("Time", "time")]
    columns += [(c, "string") for c in ("alertname", "rule_id", "severity", "pool", "region")]
    columns += [("proxy_id", "string"), ("value", "number"), ("threshold", "number")]
    columns += [("summary", "string")]
    return [table(columns, rows, p.ref_id)]


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
    return incidents(r for r in rows if in_selection(p.selection, r.pool, r.region))


def annotation_table(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    events = alert_incidents(p, reader, span)
    columns = [("time", "time"), ("timeEnd", "time"), ("title", "string")]
    columns += [("text", "string"), ("tags", "string")]
    rows = [[e["time"], e["timeEnd"], e["title"], e["text"], ",".join(e["tags"])] for e in events]
    return [table(columns, rows, p.ref_id)]
