"""Metric values of one scope in one window, and threshold comparison.

Rates are fractions of the window's requests; latency percentiles come from the merged bucket
counts (:mod:`schemas.latency_buckets`, never averaged); throughput is requests per second of the
window. A window without requests has no value (``None``), never a fake 0.
"""

from __future__ import annotations

from schemas.latency_buckets import quantile_from_counts
from schemas.rules import Comparison, Metric
from stream_app.core.rules.scopes import Totals

_QUANTILES = {
    Metric.LATENCY_P50_MS: 0.50,
    Metric.LATENCY_P95_MS: 0.95,
    Metric.LATENCY_P99_MS: 0.99,
}


def metric_value(totals: Totals, metric: Metric, outcome: str | None = None) -> float | None:
    """The value of ``metric`` for ``totals``, or None without requests."""
    requests = totals.requests
    if requests <= 0:
        return None
    if metric is Metric.ERROR_RATE:
        return (requests - totals.successes) / requests
    if metric is Metric.SUCCESS_RATE:
        return totals.successes / requests
    if metric is Metric.OUTCOME_RATE:
        return totals.outcomes.get(outcome or "", 0) / requests
    if metric is Metric.STATUS_5XX_RATE:
        return totals.status_classes.get("5xx", 0) / requests
    if metric is Metric.THROUGHPUT_RPS:
        return requests / totals.window_s
    return quantile_from_counts(totals.buckets, _QUANTILES[metric])


def compare(op: Comparison, value: float, threshold: float) -> bool:
    """``value op threshold``."""
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold
