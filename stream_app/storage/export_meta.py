"""The metadata document of an export: the context that travels with the data.

Written next to an exported file (``FILE.meta.json``), into a Parquet file's key-value metadata
(key ``proxywhirl_metrics``) and served by ``GET /api/v1/export/meta``. It holds the range
(requested and aligned), the filters, the tier read and why (retention), the units of every
column, the latency histogram's definition (how to recompute a percentile over merged
windows), when it was generated, the schema version, the row count and the incidents of the
span (alert history: rule, scope, severity, start, end, summary) from
:func:`stream_app.storage.query_alerts.alert_history`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from schemas import latency_buckets as lb
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.export_plan import EXPORT_QUANTILES, ExportPlan, export_columns
from stream_app.storage.query_alerts import AlertFilter, AlertRow, alert_history

__all__ = ["EXPORT_SCHEMA_VERSION", "MAX_INCIDENTS", "export_metadata", "span_incidents"]

logger = logging.getLogger(__name__)

EXPORT_SCHEMA_VERSION = 1
MAX_INCIDENTS = 10_000
"""Alert state changes read for one export (the newest first: beyond, the oldest are left out
and a warning logged)."""

UNITS: dict[str, str] = {
    "window_start": "step start, UTC (RFC 3339 in CSV/NDJSON, timestamp[ms, UTC] in Parquet)",
    "step_s": "seconds (length of the step each row covers)",
    "requests": "count",
    "successes": "count",
    "success_rate": "fraction 0..1 (null without requests)",
    "error_rate": "fraction 0..1 (null without requests)",
    "outcomes": "count per outcome (success, timeout, http_error ...)",
    "status_classes": "count per HTTP status class (2xx, 4xx, 5xx ...)",
    "latency_p50_ms": "milliseconds (from the merged histogram; null without data)",
    "latency_p95_ms": "milliseconds (from the merged histogram; null without data)",
    "latency_p99_ms": "milliseconds (from the merged histogram; null without data)",
    "latency_buckets": "count per histogram bucket key (see histogram)",
    "latency_sum_ms": "milliseconds (sum of every latency)",
    "latency_min_ms": "milliseconds (null without data)",
    "latency_max_ms": "milliseconds (null without data)",
    "bytes_in": "bytes",
    "bytes_out": "bytes",
    "attempts": "count (proxy attempts, retries included)",
    "late_events": "count (events that arrived after their window closed, not in the counts)",
    "distinct_proxies": "estimated count of distinct proxies (uniqCombined)",
    "pool": "label",
    "region": "label",
    "proxy_id": "HMAC of the proxy address under the fleet key",
}


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def histogram_definition() -> dict[str, Any]:
    """How ``latency_buckets`` are keyed, and how to recompute a percentile from them."""
    return {
        "kind": "log buckets (DDSketch mapping), schemas/latency_buckets.py",
        "gamma": lb.GAMMA,
        "min_latency_ms": lb.MIN_LATENCY_MS,
        "max_key": lb.MAX_KEY,
        "relative_error": lb.RELATIVE_ERROR,
        "bucket_bounds": "key 0: latency <= min_latency_ms; key k >= 1: "
        "(min_latency_ms * gamma^(k-1), min_latency_ms * gamma^k] ms",
        "representative_ms": "key 0: 0; key k: min_latency_ms * 2 * gamma^k / (gamma + 1)",
        "merge": "add the counts of equal keys over the rows to merge (never average percentiles)",
        "percentile": "of n merged values, q is the representative of the first bucket in key "
        "order whose cumulative count exceeds floor(q * (n - 1)); in SQL: "
        "pwm_quantile(q, sumMap(latency_buckets))",
    }


def _scope_matches(plan: ExportPlan, row: AlertRow) -> bool:
    request = plan.request
    pool_ok = not request.pools or row.pool in request.pools or row.pool == ""
    region_ok = not request.regions or row.region in request.regions or row.region == ""
    return pool_ok and region_ok


def span_incidents(client: StorageClient, database: str, plan: ExportPlan) -> list[dict[str, Any]]:
    """The incidents (alerts fired, and resolved or still open) overlapping the export's range
    and scope, oldest first: one entry per (fingerprint, start)."""
    rows = alert_history(
        client,
        quote_identifier(database),
        AlertFilter(),
        start_ms=plan.start_ms,
        end_ms=plan.end_ms,
        limit=MAX_INCIDENTS,
    )
    if len(rows) >= MAX_INCIDENTS:
        logger.warning(
            "export %s..%s: more than %d alert state changes; the oldest are left out",
            _iso(plan.start_ms),
            _iso(plan.end_ms),
            MAX_INCIDENTS,
        )
    incidents: dict[tuple[str, int], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.starts_at_ms, r.fingerprint, r.recorded_at_ms)):
        if not _scope_matches(plan, row):
            continue
        key = (row.fingerprint, row.starts_at_ms)
        entry = incidents.setdefault(
            key,
            {
                "rule_id": row.rule_id,
                "alertname": row.alertname,
                "severity": row.severity,
                "scope": {"pool": row.pool, "region": row.region, "proxy_id": row.proxy_id},
                "start": _iso(row.starts_at_ms),
                "end": None,
                "summary": row.annotations.get("summary", ""),
                "value": row.value,
                "threshold": row.threshold,
                "fingerprint": row.fingerprint,
            },
        )
        if row.status == "resolved" and row.ends_at_ms is not None:
            entry["end"] = _iso(row.ends_at_ms)
        if not entry["summary"]:
            entry["summary"] = row.annotations.get("summary", "")
    return list(incidents.values())


def export_metadata(
    plan: ExportPlan,
    *,
    rows: int | None,
    incidents: list[dict[str, Any]],
    generated_at_ms: int,
    rows_estimate: int | None = None,
) -> dict[str, Any]:
    """The metadata document (see the module doc). ``rows`` is None when not known yet."""
    request = plan.request
    columns = list(export_columns(plan))
    return {
        "schema": "proxywhirl-metrics/export",
        "schema_version": EXPORT_SCHEMA_VERSION,
        "generated_at": _iso(generated_at_ms),
        "format": request.fmt.value,
        "range": {
            "requested": {"start": _iso(request.start_ms), "end": _iso(request.end_ms)},
            "aligned": {"start": _iso(plan.start_ms), "end": _iso(plan.end_ms)},
            "half_open": "rows whose step starts at or after start and before end",
        },
        "filters": {
            "pools": list(request.pools),
            "regions": list(request.regions),
            "proxies": request.proxies,
        },
        "resolution": {
            "requested": request.resolution,
            "tier": plan.resolution.value,
            "table": plan.table,
            "step_s": plan.step_s,
            "why": plan.reason,
            "retention_days": plan.retention_days,
        },
        "columns": [{"name": c, "unit": UNITS.get(c, "")} for c in columns],
        "percentiles": {name: q for name, q in EXPORT_QUANTILES},
        "histogram": histogram_definition(),
        "rows": rows,
        "rows_estimate": rows_estimate,
        "incidents": incidents,
    }
