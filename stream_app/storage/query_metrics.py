"""The metrics every reader shows, derived one way from stored totals (pure; no I/O).

A rate or a percentile is always computed from the merged counts of the group it describes
(a step, a window, a range): percentiles from the merged latency histogram
(:func:`schemas.latency_buckets.quantile_from_counts`, what ``pwm_quantile`` computes in SQL),
never averaged. Without requests a rate or percentile is ``None`` ("no data", never 0).
"""

from __future__ import annotations

import enum
from typing import Any

from schemas.events import Outcome
from stream_app.storage.results import WindowTotals

__all__ = ["LATENCY_QUANTILES", "SeriesMetric", "metric_value", "totals_metrics"]

LATENCY_QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


class SeriesMetric(enum.StrEnum):
    """What a series shows per step."""

    REQUESTS = "requests"
    SUCCESS_RATE = "success_rate"
    ERROR_RATE = "error_rate"
    OUTCOME_RATE = "outcome_rate"
    """Share of requests ending with ``outcome`` (required)."""
    STATUS_5XX_RATE = "status_5xx_rate"
    LATENCY_P50_MS = "latency_p50_ms"
    LATENCY_P90_MS = "latency_p90_ms"
    LATENCY_P95_MS = "latency_p95_ms"
    LATENCY_P99_MS = "latency_p99_ms"
    THROUGHPUT_RPS = "throughput_rps"
    BYTES_IN = "bytes_in"
    BYTES_OUT = "bytes_out"
    DISTINCT_PROXIES = "distinct_proxies"
    LATE_EVENTS = "late_events"


_QUANTILE_OF: dict[SeriesMetric, float] = {
    SeriesMetric.LATENCY_P50_MS: 0.5,
    SeriesMetric.LATENCY_P90_MS: 0.9,
    SeriesMetric.LATENCY_P95_MS: 0.95,
    SeriesMetric.LATENCY_P99_MS: 0.99,
}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def metric_value(
    totals: WindowTotals | None,
    metric: SeriesMetric,
    *,
    span_s: float,
    outcome: Outcome | None = None,
) -> float | None:
    """``metric`` of one group of ``span_s`` seconds; None for no data (``totals`` None)."""
    if totals is None:
        return None
    match metric:
        case SeriesMetric.REQUESTS:
            return float(totals.requests)
        case SeriesMetric.SUCCESS_RATE:
            return totals.success_rate
        case SeriesMetric.ERROR_RATE:
            return totals.error_rate
        case SeriesMetric.OUTCOME_RATE:
            if outcome is None:
                raise ValueError("outcome_rate needs an outcome")
            return _share(totals.outcomes.get(outcome.value, 0), totals.requests)
        case SeriesMetric.STATUS_5XX_RATE:
            return _share(totals.status_classes.get("5xx", 0), totals.requests)
        case SeriesMetric.THROUGHPUT_RPS:
            return totals.requests / span_s if span_s > 0 else None
        case SeriesMetric.BYTES_IN:
            return float(totals.bytes_in)
        case SeriesMetric.BYTES_OUT:
            return float(totals.bytes_out)
        case SeriesMetric.DISTINCT_PROXIES:
            return float(totals.distinct_proxies)
        case SeriesMetric.LATE_EVENTS:
            return float(totals.late_events)
    return totals.quantile(_QUANTILE_OF[metric])


def totals_metrics(totals: WindowTotals, *, span_s: float) -> dict[str, Any]:
    """Every metric of one group, as the API documents them."""
    errors = {
        name.value: _share(totals.outcomes.get(name.value, 0), totals.requests)
        for name in Outcome
        if name is not Outcome.SUCCESS
    }
    return {
        "requests": totals.requests,
        "successes": totals.successes,
        "success_rate": totals.success_rate,
        "error_rate": totals.error_rate,
        "error_rate_by_outcome": errors,
        "status_5xx_rate": _share(totals.status_classes.get("5xx", 0), totals.requests),
        "latency_ms": {k: totals.quantile(q) for k, q in LATENCY_QUANTILES.items()},
        "throughput_rps": totals.requests / span_s if span_s > 0 else None,
        "bytes_in": totals.bytes_in,
        "bytes_out": totals.bytes_out,
        "distinct_proxies": totals.distinct_proxies,
        "late_events": totals.late_events,
    }
