"""Prometheus exposition of the latest closed window per (pool, region): a custom Collector.

The stream core already computes everything per window; re-deriving it with prometheus-client
counters and histograms would cost per request and could not give percentiles that agree with the
dashboard. So :class:`WindowAggregateCollector` keeps the latest closed
:class:`~schemas.aggregates.WindowAggregate` of each (pool, region) and renders gauges from it at
scrape time:

==========================================  ==================================================
``proxywhirl_window_requests``              requests in the window
``proxywhirl_window_success_ratio``         successes / requests
``proxywhirl_window_error_ratio``           1 - success ratio
``proxywhirl_window_outcome_ratio``         share of requests per ``outcome`` label
``proxywhirl_window_status_5xx_ratio``      share of requests answered with an HTTP 5xx
``proxywhirl_window_latency_ms``            latency ``quantile`` 0.5 / 0.95 / 0.99 (within 1%)
``proxywhirl_window_throughput_rps``        requests per second over the window
``proxywhirl_window_end_timestamp_seconds`` end of the window the values describe
==========================================  ==================================================

Labels are bounded: ``pool`` and ``region`` (plus ``outcome`` / ``quantile`` where named), never
a proxy id; per-proxy aggregates are ignored here. A window without requests exposes
``requests 0`` and no ratios or latencies ("no data", never a fake 0). A (pool, region) whose
latest window ended more than ``staleness_s`` ago disappears from the exposition, so a vanished
pool does not report its last values forever. The alert rules exported by
``alerts export-prometheus`` (:mod:`stream_app.alerting.prometheus_rules`) read these names:
keep the two in step (:data:`METRIC_NAMES`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.aggregates import WindowAggregate
from schemas.events import Outcome

QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)

REQUESTS = "proxywhirl_window_requests"
SUCCESS_RATIO = "proxywhirl_window_success_ratio"
ERROR_RATIO = "proxywhirl_window_error_ratio"
OUTCOME_RATIO = "proxywhirl_window_outcome_ratio"
STATUS_5XX_RATIO = "proxywhirl_window_status_5xx_ratio"
LATENCY_MS = "proxywhirl_window_latency_ms"
THROUGHPUT_RPS = "proxywhirl_window_throughput_rps"
WINDOW_END = "proxywhirl_window_end_timestamp_seconds"

METRIC_NAMES: frozenset[str] = frozenset(
    {
        REQUESTS,
        SUCCESS_RATIO,
        ERROR_RATIO,
        OUTCOME_RATIO,
        STATUS_5XX_RATIO,
        LATENCY_MS,
        THROUGHPUT_RPS,
        WINDOW_END,
    }
)

_SCOPE = ("pool", "region")


class WindowAggregateCollector(Collector):
    """Latest closed window per (pool, region), exposed as gauges; thread-safe."""

    def __init__(
        self,
        *,
        staleness_s: float = 300.0,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        if staleness_s <= 0:
            raise ValueError("staleness_s must be > 0")
        self._staleness_s = staleness_s
        self._clock_s = clock_s
        self._latest: dict[tuple[str, str], WindowAggregate] = {}
        self._lock = threading.Lock()

    def observe(self, aggregate: WindowAggregate) -> None:
        """Offer a closed window; kept if it is the newest of its (pool, region)."""
        scope = aggregate.scope
        if scope.proxy_id is not None:
            return
        key = (scope.pool, scope.region)
        with self._lock:
            current = self._latest.get(key)
            if current is None or aggregate.window_end_ms >= current.window_end_ms:
                self._latest[key] = aggregate

    def listener(self, aggregates: Sequence[WindowAggregate]) -> None:
        """A window listener (embedded pipeline, Faust agent): observe every closed window."""
        for aggregate in aggregates:
            self.observe(aggregate)

    def scopes(self) -> list[tuple[str, str]]:
        """The (pool, region) pairs currently exposed (stale ones pruned)."""
        return sorted(key for key, _ in self._fresh())

    def _fresh(self) -> list[tuple[tuple[str, str], WindowAggregate]]:
        cutoff_ms = (self._clock_s() - self._staleness_s) * 1000.0
        with self._lock:
            for key in [k for k, a in self._latest.items() if a.window_end_ms < cutoff_ms]:
                del self._latest[key]
            return sorted(self._latest.items())

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the series depend on the data (no collect() at registration)."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        requests = GaugeMetricFamily(
            REQUESTS, "Requests in the latest closed window", labels=_SCOPE
        )
        success = GaugeMetricFamily(
            SUCCESS_RATIO, "Successes / requests in the latest closed window", labels=_SCOPE
        )
        error = GaugeMetricFamily(
            ERROR_RATIO, "1 - success ratio in the latest closed window", labels=_SCOPE
        )
        outcome = GaugeMetricFamily(
            OUTCOME_RATIO,
            "Share of requests per outcome in the latest closed window",
            labels=(*_SCOPE, "outcome"),
        )
        status_5xx = GaugeMetricFamily(
            STATUS_5XX_RATIO,
            "Share of requests answered with HTTP 5xx in the latest closed window",
            labels=_SCOPE,
        )
        latency = GaugeMetricFamily(
            LATENCY_MS,
            "Latency quantile in ms (log-bucket histogram, within 1%) of the latest closed window",
            labels=(*_SCOPE, "quantile"),
        )
        throughput = GaugeMetricFamily(
            THROUGHPUT_RPS, "Requests per second over the latest closed window", labels=_SCOPE
        )
        window_end = GaugeMetricFamily(
            WINDOW_END, "End of the latest closed window (unix seconds)", labels=_SCOPE
        )
        for (pool, region), agg in self._fresh():
            labels = [pool, region]
            requests.add_metric(labels, float(agg.requests))
            throughput.add_metric(labels, agg.throughput_rps)
            window_end.add_metric(labels, agg.window_end_ms / 1000.0)
            if not agg.requests:
                continue
            success.add_metric(labels, agg.successes / agg.requests)
            error.add_metric(labels, (agg.requests - agg.successes) / agg.requests)
            status_5xx.add_metric(labels, agg.status_classes.get("5xx", 0) / agg.requests)
            for name in Outcome:
                outcome.add_metric([*labels, name.value], agg.outcomes.get(name, 0) / agg.requests)
            for q in QUANTILES:
                value = agg.latency.quantile(q)
                if value is not None:
                    latency.add_metric([*labels, _format_quantile(q)], value)
        yield from (requests, success, error, outcome, status_5xx, latency, throughput, window_end)


def _format_quantile(q: float) -> str:
    return f"{q:g}"
