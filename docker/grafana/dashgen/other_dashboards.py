"""The pipeline health dashboard (Prometheus) and the overview on the JSON datasource."""

from __future__ import annotations

import json

from dashgen.model import (
    JSON_API,
    PROMETHEUS,
    Dashboard,
    Json,
    Panel,
    json_target,
    prometheus_target,
)

__all__ = ["json_overview", "pipeline_health"]

RATE = "[$__rate_interval]"


def _prom(
    title: str, description: str, targets: list[tuple[str, str]], unit: str, **extra: object
) -> Panel:
    return Panel(
        "timeseries",
        title,
        description,
        PROMETHEUS,
        [
            prometheus_target(expr, legend, ref_id=chr(ord("A") + i))
            for i, (expr, legend) in enumerate(targets)
        ],
        unit,
        **extra,  # type: ignore[arg-type]
    )


def pipeline_health() -> Dashboard:
    return Dashboard(
        uid="proxywhirl-pipeline",
        title="ProxyWhirl pipeline health",
        description="The stream workers, alert delivery and the API, from their Prometheus "
        "metrics (the workers' /metrics on PWM_WORKER_METRICS_PORT, the API's /metrics).",
        time_from="now-6h",
        refresh="30s",
        panels=[
            _prom(
                "Consumer lag",
                "What: records of the requests topic not yet read, summed over partitions, per "
                "worker. How: proxywhirl_worker_consumer_lag (end offset minus position, read "
                "every cycle). When bad: lag growing for minutes means the workers cannot keep "
                "up: scale the worker service (up to the topic's partitions) or check for a "
                "paused worker below.",
                [("sum by (instance) (proxywhirl_worker_consumer_lag)", "{{instance}}")],
                "short",
            ),
            _prom(
                "Watermark delay",
                "What: how far each worker's event-time watermark trails the wall clock (the "
                "oldest partition). How: max of proxywhirl_worker_watermark_delay_seconds. "
                "When bad: windows close late and alerts fire late; look at lag and at "
                "producers whose clocks or spools lag behind.",
                [("max by (instance) (proxywhirl_worker_watermark_delay_seconds)", "{{instance}}")],
                "s",
            ),
            _prom(
                "Events aggregated",
                "What: events per second the workers aggregate. How: rate of "
                "proxywhirl_worker_events_total. When bad: a drop to zero with producers "
                "running means the pipeline stopped: check lag, paused workers and Kafka.",
                [
                    (
                        f"sum by (instance) (rate(proxywhirl_worker_events_total{RATE}))",
                        "{{instance}}",
                    )
                ],
                "ops",
            ),
            _prom(
                "Late events",
                "What: events per second that arrived after their window closed (counted, "
                "never merged, dead-lettered as late). How: rate of "
                'proxywhirl_worker_dead_letters_total{reason="late"}. When bad: producers '
                "deliver late (spooled during an outage, slow flushes) or the grace is too "
                "short for the fleet's delays (PWM_WORKER_GRACE_MS).",
                [
                    (
                        f'sum(rate(proxywhirl_worker_dead_letters_total{{reason="late"}}{RATE}))',
                        "late",
                    )
                ],
                "ops",
            ),
            _prom(
                "Dead letters by reason",
                "What: records and events per second sent to the dead-letter topic, by reason "
                "(decode, empty, late, clock_skew, too_old, internal, rejected). How: rate of "
                "proxywhirl_worker_dead_letters_total. When bad: decode or rejected point at "
                "a producer sending malformed data; clock_skew at a host's clock (see "
                "proxywhirl_worker_clock_skew_events_total per source_host); internal at a bug.",
                [
                    (
                        f"sum by (reason) (rate(proxywhirl_worker_dead_letters_total{RATE}))",
                        "{{reason}}",
                    )
                ],
                "ops",
                stack=True,
            ),
            _prom(
                "Sink errors",
                "What: failed flush writes (retried), rows ClickHouse refused for their data, "
                "failed offset commits, and workers paused. How: rates of "
                "proxywhirl_worker_sink_failures_total, _rejected_rows_total, "
                "_commit_failures_total; proxywhirl_worker_paused. When bad: ClickHouse is "
                "unreachable or overloaded (too many parts, memory): check it; rejected rows "
                "are in the dead letters.",
                [
                    (f"sum(rate(proxywhirl_worker_sink_failures_total{RATE}))", "sink failures"),
                    (f"sum(rate(proxywhirl_worker_rejected_rows_total{RATE}))", "rejected rows"),
                    (
                        f"sum(rate(proxywhirl_worker_commit_failures_total{RATE}))",
                        "commit failures",
                    ),
                    ("sum(proxywhirl_worker_paused)", "paused workers"),
                ],
                "short",
            ),
            _prom(
                "Stored delay p95",
                "What: the 95th percentile of the time from an event to its row in ClickHouse. "
                "How: histogram_quantile over proxywhirl_worker_stored_delay_seconds_bucket. "
                "When bad: dashboards and alerts trail reality by this much; lower "
                "PWM_WORKER_FLUSH_INTERVAL_MS or find the slow step (lag, sink errors).",
                [
                    (
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(proxywhirl_worker_stored_delay_seconds_bucket{RATE})))",
                        "p95",
                    )
                ],
                "s",
            ),
            _prom(
                "Alert delivery",
                "What: alert events delivered, retried, dead-lettered and dropped per second, "
                "by sink (Kafka topic, Alertmanager, webhooks, history), and the queue depth. "
                "How: rates of pwm_alert_delivered_total, pwm_alert_delivery_retries_total, "
                "pwm_alert_dead_lettered_total, pwm_alert_dropped_total; pwm_alert_queue_depth. "
                "When bad: retries or a growing queue mean a sink is away; dead letters or "
                "drops mean alerts were lost for that sink: check its URL and credentials.",
                [
                    (
                        f"sum by (sink) (rate(pwm_alert_delivered_total{RATE}))",
                        "delivered {{sink}}",
                    ),
                    (
                        f"sum by (sink) (rate(pwm_alert_delivery_retries_total{RATE}))",
                        "retried {{sink}}",
                    ),
                    (
                        f"sum by (sink) (rate(pwm_alert_dead_lettered_total{RATE}))",
                        "dead-lettered {{sink}}",
                    ),
                    (f"sum by (sink) (rate(pwm_alert_dropped_total{RATE}))", "dropped {{sink}}"),
                    ("sum by (sink) (pwm_alert_queue_depth)", "queued {{sink}}"),
                ],
                "short",
            ),
            _prom(
                "API storage reads",
                "What: REST reads that failed because storage did not answer, failed refreshes "
                "of the live windows, and refused requests by reason. How: rates of "
                "pwm_api_query_failures_total, pwm_api_window_refresh_failures_total, "
                "pwm_api_auth_refusals_total. When bad: ClickHouse is away from the API; "
                "refusals growing mean a client with a wrong or missing token.",
                [
                    (f"sum(rate(pwm_api_query_failures_total{RATE}))", "query failures"),
                    (
                        f"sum(rate(pwm_api_window_refresh_failures_total{RATE}))",
                        "window refresh failures",
                    ),
                    (
                        f"sum by (reason) (rate(pwm_api_auth_refusals_total{RATE}))",
                        "refused {{reason}}",
                    ),
                ],
                "ops",
            ),
        ],
    )


PAYLOAD = json.dumps({"pool": "${pool:csv}", "region": "${region:csv}"})
"""The payload of every target: the plugin interpolates the text, then parses it as JSON, so a
multi-value variable goes in as ``csv`` inside a string (docs/api.md); All is ``$__all``."""


def _json_variable(name: str, label: str, query: Json) -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": JSON_API,
        "query": {"refId": name, "format": "json", "query": json.dumps(query)},
        "definition": json.dumps(query),
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": "$__all",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }


def _series(title: str, description: str, targets: list[str], unit: str) -> Panel:
    return Panel(
        "timeseries",
        title,
        description,
        JSON_API,
        [json_target(t, PAYLOAD, ref_id=chr(ord("A") + i)) for i, t in enumerate(targets)],
        unit,
    )


_VIA_API = (
    " How: the API's JSON datasource (/grafana/query) answers from the same query layer and "
    "tiers as REST v1 (/api/v1/series), one series per pool when several are selected."
)


def json_overview() -> Dashboard:
    return Dashboard(
        uid="proxywhirl-overview-json",
        title="ProxyWhirl fleet overview (API)",
        description="The fleet overview through the API's Grafana JSON datasource, for the "
        "embedded mode (serve/demo), whose ClickHouse Grafana cannot reach directly.",
        variables=[
            _json_variable("pool", "Pool", {"target": "pool"}),
            _json_variable("region", "Region", {"target": "region", "pool": "${pool:csv}"}),
        ],
        annotations=[
            {
                "name": "Alerts",
                "enable": True,
                "hide": False,
                "iconColor": "red",
                "datasource": JSON_API,
                "target": json_target("alert_annotations", PAYLOAD, ref_id="Anno"),
            }
        ],
        panels=[
            Panel(
                "table",
                "Pool x region status",
                "What: the latest closed window of every pool x region: requests, success and "
                "error rate, latency percentiles, throughput. How: the API's pool_table "
                "target (as /api/v1/summary). When bad: open the pool in the drill-down "
                "dashboards or ask /api/v1/proxies for its worst proxies.",
                JSON_API,
                [json_target("pool_table", PAYLOAD)],
                "short",
                width=24,
                height=10,
            ),
            _series(
                "Success rate",
                "What: the share of requests that succeeded." + _VIA_API + " When bad: find "
                "the pools behind the drop in the status table; alerts are red annotations.",
                ["success_rate"],
                "percentunit",
            ),
            _series(
                "Error rate",
                "What: the share of requests that failed." + _VIA_API + " When bad: see "
                "Errors by outcome for the kind of failure.",
                ["error_rate"],
                "percentunit",
            ),
            _series(
                "Latency p50 / p95 / p99",
                "What: latency percentiles in ms from the merged histogram (never averaged)."
                + _VIA_API
                + " When bad: p99 alone rising points at a few slow proxies.",
                ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"],
                "ms",
            ),
            _series(
                "Throughput",
                "What: requests per second." + _VIA_API + " When bad: a drop to zero while "
                "the fleet runs means the producers or the pipeline stopped.",
                ["throughput_rps"],
                "reqps",
            ),
            _series(
                "Errors by outcome",
                "What: the error rate split by failure outcome (timeout, connection_error, "
                "http_error, ...)." + _VIA_API + " When bad: timeouts and connection errors "
                "point at proxies, http_error and rate_limited at the targets.",
                ["errors_by_outcome"],
                "percentunit",
            ),
        ],
    )
