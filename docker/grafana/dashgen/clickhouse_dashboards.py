"""The dashboards that read ClickHouse: fleet overview, pool and region, proxies."""

from __future__ import annotations

from dashgen import queries as q
from dashgen.model import CLICKHOUSE, Dashboard, Json, Panel, clickhouse_target, clickhouse_variable
from dashgen.sql import DB, in_filter

__all__ = ["fleet_overview", "pool_region", "proxies"]

TIERS_NOTE = (
    " Read from the rollup tier the range needs (10 s up to 1 h, 1 min up to 2 days, 1 h up to "
    "120 days, 1 day beyond; a coarser one once a tier's retention no longer covers the start; "
    "pool-level rollups when every region is selected)."
)

POOL_VARIABLE = clickhouse_variable(
    "pool",
    "Pool",
    f"SELECT pool FROM {DB}.agg_pool_1d WHERE window_start >= toStartOfDay($__fromTime) "
    "AND window_start <= $__toTime GROUP BY pool ORDER BY pool",
)
REGION_VARIABLE = clickhouse_variable(
    "region",
    "Region",
    f"SELECT region FROM {DB}.agg_1d WHERE window_start >= toStartOfDay($__fromTime) "
    f"AND window_start <= $__toTime AND {in_filter('pool', 'pool')} "
    "GROUP BY region ORDER BY region",
)
PROXY_VARIABLE = clickhouse_variable(
    "proxy",
    "Proxy (most failures in the range's last day)",
    f"SELECT proxy_id FROM {DB}.proxy_1m "
    "WHERE window_start >= greatest($__fromTime, $__toTime - INTERVAL 1 DAY) "
    f"AND window_start <= $__toTime AND {q.proxy_filter()} "
    "GROUP BY proxy_id ORDER BY sum(requests) - sum(successes) DESC, proxy_id LIMIT 200",
    multi=False,
)

ALERTS_ANNOTATION: Json = {
    "name": "Alerts",
    "enable": True,
    "hide": False,
    "iconColor": "red",
    "datasource": CLICKHOUSE,
    "target": clickhouse_target(q.alert_annotations(), table=True, ref_id="Anno"),
}

_DRILL_TIME = "${__url_time_range}"
POOL_REGION_LINK: Json = {
    "title": "Pool and region drill-down",
    "url": "/d/proxywhirl-pool-region/proxywhirl-pool-and-region?var-pool=${__data.fields.pool}"
    f"&var-region=${{__data.fields.region}}&{_DRILL_TIME}",
}
PROXY_LINK: Json = {
    "title": "This proxy's history",
    "url": "/d/proxywhirl-proxies/proxywhirl-proxies?var-pool=${__data.fields.pool}"
    f"&var-region=${{__data.fields.region}}&var-proxy=${{__data.fields.proxy_id}}&{_DRILL_TIME}",
}


def _ch(kind: str, title: str, description: str, sql: str, unit: str, **extra: object) -> Panel:
    return Panel(
        kind,
        title,
        description,
        CLICKHOUSE,
        [clickhouse_target(sql, table=kind == "table")],
        unit,
        **extra,  # type: ignore[arg-type]
    )


def _status_table(title: str) -> Panel:
    return _ch(
        "table",
        title,
        "What: every pool x region of the selection over the whole range: requests, success "
        "and error rate, latency p50/p95/p99, mean requests per second. How: counters summed "
        "over the range's rows, rates from the sums, percentiles with pwm_quantile on the "
        "merged latency histogram; ranges over 1 hour count the whole minutes (over 6 hours "
        "hours, over 7 days UTC days) that overlap the range. Worst error rate first. When "
        "bad: open the row's pool and region (click a cell), then the proxy drill-down for "
        "the proxies behind it.",
        q.scope_table(),
        "short",
        width=24,
        height=10,
        links=[POOL_REGION_LINK],
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": "success_rate|error_rate"},
                "properties": [{"id": "unit", "value": "percentunit"}],
            },
            {
                "matcher": {"id": "byRegexp", "options": "p\\d+_ms"},
                "properties": [{"id": "unit", "value": "ms"}],
            },
        ],
    )


def _rate(measure: str, title: str, what: str, bad: str, by: str | None = None) -> Panel:
    unit = {"requests_per_s": "reqps", "p95_ms": "ms"}.get(measure, "percentunit")
    per = f", one series per {by}" if by else " of the whole selection"
    how = (
        "the latency histograms of the step merged and read with pwm_quantile (at most 300 "
        "points per series: one histogram merge per point and series)"
        if measure == "p95_ms"
        else "counters summed per step, the rate computed from the sums (never an average of rates)"
    )
    return _ch(
        "timeseries",
        title,
        f"What: {what}{per}. How: {how}.{TIERS_NOTE} When bad: {bad}",
        q.series(measure, by=by),
        unit,
        max_data_points=300 if measure == "p95_ms" else None,
    )


def _latency() -> Panel:
    return _ch(
        "timeseries",
        "Latency p50 / p95 / p99",
        "What: request latency percentiles of the selection, in ms, measured by the producer "
        "around each proxied request. How: the latency histograms of the step merged "
        "(sumMap) and read with pwm_quantile, exactly as the API and alerts do (relative "
        f"error < 1%); percentiles are never averaged.{TIERS_NOTE} When bad: a p99 rising "
        "alone points at a few slow proxies (proxy drill-down); all three rising together "
        "at the targets or the network of a region.",
        q.latency(),
        "ms",
    )


def _errors_by_outcome() -> Panel:
    return _ch(
        "timeseries",
        "Errors by outcome",
        "What: failed requests per second by outcome (timeout, connection_error, http_error, "
        "proxy_auth_error, ...). How: the outcome counters summed per step and divided by the "
        f"step.{TIERS_NOTE} When bad: timeouts and connection errors point at proxies or "
        "networks, proxy_auth_error at credentials, http_error and rate_limited at the "
        "targets, no_proxy_available at a pool too small for its load.",
        q.errors_by_outcome(),
        "reqps",
        stack=True,
    )


def fleet_overview() -> Dashboard:
    return Dashboard(
        uid="proxywhirl-overview",
        title="ProxyWhirl fleet overview",
        description="Fleet health from the ClickHouse rollups: status per pool x region, "
        "success and error rate, latency percentiles, throughput, errors by outcome, alerts.",
        variables=[POOL_VARIABLE, REGION_VARIABLE],
        annotations=[ALERTS_ANNOTATION],
        panels=[
            _status_table("Pool x region status"),
            _rate(
                "success_rate",
                "Success rate",
                "the share of requests that succeeded",
                "find the pools and regions behind the drop in the status table; alerts "
                "appear as red annotations.",
            ),
            _rate(
                "error_rate",
                "Error rate",
                "the share of requests that failed (any outcome but success)",
                "see Errors by outcome for the kind of failure, then drill down to the pool, "
                "region and proxies.",
            ),
            _latency(),
            _rate(
                "requests_per_s",
                "Throughput",
                "requests per second",
                "a drop to zero while the fleet runs means the producers or the pipeline "
                "stopped (see the pipeline health dashboard); a step change follows traffic.",
            ),
            _errors_by_outcome(),
        ],
    )


def pool_region() -> Dashboard:
    return Dashboard(
        uid="proxywhirl-pool-region",
        title="ProxyWhirl pool and region",
        description="One or a few pools and regions side by side: the same measures as the "
        "overview, one series per pool or region.",
        variables=[POOL_VARIABLE, REGION_VARIABLE],
        annotations=[ALERTS_ANNOTATION],
        panels=[
            _rate(
                "success_rate",
                "Success rate by pool",
                "the share of requests that succeeded",
                "compare the pools: one pool alone dropping is its proxies (proxy drill-down), "
                "all dropping together the targets or the pipeline.",
                by="pool",
            ),
            _rate(
                "error_rate",
                "Error rate by region",
                "the share of requests that failed",
                "a single region failing points at its network or its proxies' provider.",
                by="region",
            ),
            _rate(
                "p95_ms",
                "Latency p95 by pool",
                "the 95th latency percentile (ms) from the merged histogram",
                "a pool whose p95 rises alone: open the proxy drill-down and sort by latency.",
                by="pool",
            ),
            _rate(
                "requests_per_s",
                "Throughput by region",
                "requests per second",
                "a region losing traffic while others keep theirs: its producers or its "
                "proxies are away.",
                by="region",
            ),
            _errors_by_outcome(),
            _latency(),
            _status_table("Pool x region totals"),
        ],
    )


def proxies() -> Dashboard:
    proxy_note = (
        " How: the selected proxy's one-minute rows (proxy_1m, kept 90 days; its daily rows, "
        "proxy_1d, kept 400 days, for ranges longer than 90 days or starting earlier) summed "
        "per step (a multiple of the row); rates from the sums, percentiles from the merged "
        "histogram."
    )
    return Dashboard(
        uid="proxywhirl-proxies",
        title="ProxyWhirl proxies",
        description="The proxies failing most in the selection, and one proxy's history. "
        "Proxies are HMAC ids: the fleet key maps them back to addresses on the fleet hosts.",
        variables=[POOL_VARIABLE, REGION_VARIABLE, PROXY_VARIABLE],
        annotations=[ALERTS_ANNOTATION],
        panels=[
            _ch(
                "table",
                "Top offenders",
                "What: the 50 proxies with the highest error rate over the range (at least 20 "
                "requests), with their requests and latency percentiles. How: the per-proxy rows "
                "overlapping the range (proxy_1m, one minute, kept 90 days, up to 2 days; "
                "proxy_1d, one UTC day, kept 400 days, beyond) summed per proxy, percentiles "
                "from the merged histogram. When bad: click a proxy for its history; rotate out "
                "proxies failing far above their pool, check the pool when all fail alike.",
                q.top_offenders(),
                "short",
                width=24,
                height=10,
                links=[PROXY_LINK],
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "error_rate"},
                        "properties": [{"id": "unit", "value": "percentunit"}],
                    },
                    {
                        "matcher": {"id": "byRegexp", "options": "p\\d+_ms"},
                        "properties": [{"id": "unit", "value": "ms"}],
                    },
                ],
            ),
            _ch(
                "timeseries",
                "Proxy success and error rate",
                "What: the selected proxy's success and error rate." + proxy_note + " When "
                "bad: compare with its pool (pool drill-down): the proxy alone failing means "
                "rotating it out; the whole pool failing means the targets or the provider.",
                q.proxy_series(
                    f"{q.SUCCESS_RATE} AS success_rate, {q.ERROR_RATE} AS error_rate",
                    "requests, successes",
                ),
                "percentunit",
            ),
            _ch(
                "timeseries",
                "Proxy latency p50 / p95 / p99",
                "What: the selected proxy's latency percentiles (ms)." + proxy_note + " When "
                "bad: a proxy much slower than its pool's p95 is a candidate for removal.",
                q.proxy_series(q.LATENCY, "latency_buckets"),
                "ms",
            ),
            _ch(
                "timeseries",
                "Proxy throughput",
                "What: requests per second through the selected proxy." + proxy_note + " When "
                "bad: no traffic while its pool has some means ProxyWhirl stopped choosing it "
                "(cooled down or removed).",
                q.proxy_series(f"{q.THROUGHPUT} AS requests_per_s", "requests"),
                "reqps",
            ),
            _ch(
                "timeseries",
                "Proxy errors by outcome",
                "What: the selected proxy's failed requests per second by outcome."
                + proxy_note
                + " When bad: proxy_auth_error means its credentials, timeouts and connection "
                "errors the proxy itself.",
                q.proxy_errors_by_outcome(),
                "reqps",
                stack=True,
            ),
        ],
    )
