"""The SQL of each ClickHouse panel kind, built on :mod:`dashgen.sql`.

Ratios are computed from the summed counters of the step (never averaged), percentiles with
``pwm_quantile`` on the merged bucket maps (``sumMap(latency_buckets)``), as the query layer
(stream_app/storage/queries.py) and REST v1 compute them. Aliases never repeat a stored
column's name (an alias would shadow the column inside the aggregates).
"""

from __future__ import annotations

from dashgen.sql import (
    DB,
    PROXY_SERIES_TIERS,
    PROXY_TOTAL_TIERS,
    SERIES_TIERS,
    TOTAL_TIERS,
    in_filter,
    tier_header,
    tiered_rows,
)

__all__ = [
    "STEP_TIME",
    "alert_annotations",
    "errors_by_outcome",
    "latency",
    "proxy_filter",
    "proxy_series",
    "scope_table",
    "series",
    "top_offenders",
]

STEP_TIME = "toStartOfInterval(window_start, toIntervalSecond(step_s)) AS time"

SUCCESS_RATE = "if(sum(requests) = 0, NULL, sum(successes) / sum(requests))"
ERROR_RATE = "if(sum(requests) = 0, NULL, (sum(requests) - sum(successes)) / sum(requests))"
THROUGHPUT = "sum(requests) / step_s"
LATENCY = (
    "pwm_quantile(0.5, sumMap(latency_buckets)) AS p50_ms, "
    "pwm_quantile(0.95, sumMap(latency_buckets)) AS p95_ms, "
    "pwm_quantile(0.99, sumMap(latency_buckets)) AS p99_ms"
)

MEASURE_COLUMNS = {
    "success_rate": (SUCCESS_RATE, "requests, successes"),
    "error_rate": (ERROR_RATE, "requests, successes"),
    "requests_per_s": (THROUGHPUT, "requests"),
    "p95_ms": ("pwm_quantile(0.95, sumMap(latency_buckets))", "latency_buckets"),
}
"""Measure name -> (expression, stored columns it reads)."""


def series(measure: str, *, by: str | None = None) -> str:
    """One measure per step, for the selection or one series per ``by`` (pool or region)."""
    expr, columns = MEASURE_COLUMNS[measure]
    label = f", {by}" if by else ""
    rows = tiered_rows(SERIES_TIERS, f"window_start{label}, {columns}", by_region=by == "region")
    return (
        f"{tier_header(SERIES_TIERS)} SELECT {STEP_TIME}{label}, {expr} AS {measure} "
        f"FROM {rows} GROUP BY time{label} ORDER BY time"
    )


def latency() -> str:
    """p50, p95, p99 (ms) of the selection per step, from the merged histogram."""
    rows = tiered_rows(SERIES_TIERS, "window_start, latency_buckets")
    return (
        f"{tier_header(SERIES_TIERS)} SELECT {STEP_TIME}, {LATENCY} "
        f"FROM {rows} GROUP BY time ORDER BY time"
    )


def errors_by_outcome() -> str:
    """Failed requests per second, one series per failure outcome."""
    rows = tiered_rows(SERIES_TIERS, "window_start, outcomes")
    return (
        f"{tier_header(SERIES_TIERS)} SELECT time, outcome, failed / step_s AS errors_per_s "
        f"FROM (SELECT {STEP_TIME}, sumMap(outcomes) AS by_outcome FROM {rows} GROUP BY time) "
        "ARRAY JOIN mapKeys(by_outcome) AS outcome, mapValues(by_outcome) AS failed "
        "WHERE outcome != 'success' ORDER BY time"
    )


def scope_table() -> str:
    """Totals of the range per pool x region, worst error rate first (the rows overlapping
    the range; requests per second over the rows read, from the first to the end of the last)."""
    rows = tiered_rows(
        TOTAL_TIERS,
        "window_start, pool, region, requests, successes, latency_buckets",
        by_region=True,
        overlap=True,
    )
    return (
        f"{tier_header(TOTAL_TIERS)} SELECT pool, region, sum(requests) AS total_requests, "
        f"{SUCCESS_RATE} AS success_rate, {ERROR_RATE} AS error_rate, {LATENCY}, "
        "sum(requests) / (dateDiff('second', min(window_start), max(window_start)) + tier_s) "
        f"AS requests_per_s FROM {rows} GROUP BY pool, region "
        "ORDER BY error_rate DESC, pool, region"
    )


def proxy_filter() -> str:
    return f"{in_filter('pool', 'pool')} AND {in_filter('region', 'region')}"


def top_offenders() -> str:
    """The proxies with the highest error rate over the range (at least 20 requests).

    Two passes over the per-proxy rows overlapping the range (``proxy_1m`` up to 2 days,
    ``proxy_1d`` beyond): the 50 worst from the counters alone, then their latency histograms,
    so bucket maps are merged for 50 proxies, not for every proxy of the range."""
    counters = tiered_rows(
        PROXY_TOTAL_TIERS,
        "pool, region, proxy_id, requests, successes",
        by_region=True,
        overlap=True,
    )
    worst = (
        "SELECT proxy_id, pool, region, sum(requests) AS total_requests, "
        f"{ERROR_RATE} AS error_rate FROM {counters} "
        "GROUP BY proxy_id, pool, region HAVING total_requests >= 20 "
        "ORDER BY error_rate DESC, total_requests DESC, proxy_id LIMIT 50"
    )
    rows = tiered_rows(
        PROXY_TOTAL_TIERS,
        "pool, region, proxy_id, requests, successes, latency_buckets",
        by_region=True,
        overlap=True,
        where=f"(pool, region, proxy_id) IN (SELECT pool, region, proxy_id FROM ({worst}))",
    )
    return (
        f"{tier_header(PROXY_TOTAL_TIERS)} SELECT proxy_id, pool, region, "
        f"sum(requests) AS total_requests, {ERROR_RATE} AS error_rate, {LATENCY} FROM {rows} "
        "GROUP BY proxy_id, pool, region "
        "ORDER BY error_rate DESC, total_requests DESC, proxy_id"
    )


def _proxy_rows(columns: str) -> str:
    """The selected proxy's rows of the chosen tier (``proxy_1m``, or ``proxy_1d`` for ranges
    longer than 90 days or starting before ``proxy_1m`` keeps them)."""
    return tiered_rows(
        PROXY_SERIES_TIERS,
        f"window_start, {columns}",
        by_region=True,
        where="proxy_id = ${proxy:singlequote}",
    )


def proxy_series(measures: str, columns: str) -> str:
    """Measures of the selected proxy per step, from its stored ``columns``."""
    return (
        f"{tier_header(PROXY_SERIES_TIERS)} SELECT {STEP_TIME}, {measures} "
        f"FROM {_proxy_rows(columns)} GROUP BY time ORDER BY time"
    )


def proxy_errors_by_outcome() -> str:
    return (
        f"{tier_header(PROXY_SERIES_TIERS)} SELECT time, outcome, failed / step_s AS errors_per_s "
        f"FROM (SELECT {STEP_TIME}, sumMap(outcomes) AS by_outcome "
        f"FROM {_proxy_rows('outcomes')} GROUP BY time) "
        "ARRAY JOIN mapKeys(by_outcome) AS outcome, mapValues(by_outcome) AS failed "
        "WHERE outcome != 'success' ORDER BY time"
    )


def alert_annotations() -> str:
    """One annotation per alert incident overlapping the range and started at most 30 days
    before it (fleet-wide alerts, with an empty pool or region, whatever the selection)."""
    return (
        "SELECT toUnixTimestamp64Milli(starts_at) AS time, "
        "toUnixTimestamp64Milli(coalesce(maxIf(ends_at, status = 'resolved'), "
        "now64(3, 'UTC'))) AS timeEnd, "
        "concat(any(alertname), ' (', any(severity), ')') AS title, "
        "concat(if(countIf(status = 'resolved') > 0, 'resolved', 'firing'), ': ', "
        "any(pool), '/', any(region), if(any(proxy_id) = '', '', concat(' proxy ', "
        "any(proxy_id))), ' ', any(annotations)['summary']) AS text, "
        "arrayStringConcat(arrayFilter(t -> t != '', [any(rule_id), any(severity), any(pool), "
        "any(region)]), ',') AS tags "
        f"FROM {DB}.alert_history "
        "WHERE starts_at <= $__toTime AND starts_at >= $__fromTime - INTERVAL 30 DAY "
        f"AND (pool = '' OR {in_filter('pool', 'pool')}) "
        f"AND (region = '' OR {in_filter('region', 'region')}) "
        "GROUP BY fingerprint, starts_at "
        "HAVING coalesce(maxIf(ends_at, status = 'resolved'), now64(3, 'UTC')) >= $__fromTime "
        "ORDER BY time"
    )
