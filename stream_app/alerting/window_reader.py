"""Stored windows read back as the aggregates the rule engine evaluates.

The fleet-wide rules (and the API's /metrics) read a window's pool x region totals from
ClickHouse, where every worker's partial sums meet; :func:`totals_to_aggregate` turns one stored
total into the :class:`~schemas.aggregates.WindowAggregate` the core produces.
"""

from __future__ import annotations

from typing import Protocol

from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.events import Outcome
from stream_app.alerting.errors import DeliveryUnavailable
from stream_app.storage import errors as storage_errors
from stream_app.storage.queries import StorageQueries
from stream_app.storage.results import WindowTotals

__all__ = ["ClickHouseWindowReader", "WindowSource", "totals_to_aggregate"]


def totals_to_aggregate(totals: WindowTotals) -> WindowAggregate:
    """A stored pool x region window as the :class:`WindowAggregate` the engine evaluates."""
    requests = totals.requests
    outcomes = {
        Outcome(k): v for k, v in totals.outcomes.items() if k in Outcome._value2member_map_
    }
    return WindowAggregate(
        scope=Scope(pool=totals.pool, region=totals.region),
        window_start_ms=totals.window_start_ms,
        window_end_ms=totals.window_start_ms + totals.window_s * 1000,
        window_s=totals.window_s,
        requests=requests,
        successes=totals.successes,
        outcomes=outcomes,
        status_classes=dict(totals.status_classes),
        latency=LatencyHistogram(
            buckets=dict(totals.latency_buckets),
            count=requests,
            sum_ms=max(0.0, totals.latency_sum_ms),
            min_ms=totals.latency_min_ms if requests else None,
            max_ms=totals.latency_max_ms if requests else None,
        ),
        bytes_in=totals.bytes_in,
        bytes_out=totals.bytes_out,
        attempts=totals.attempts,
        distinct_proxies=totals.distinct_proxies,
        late_events=totals.late_events,
    )


class ClickHouseWindowReader:
    """Reads one window's pool x region totals (every worker's partial sums, merged)."""

    def __init__(self, queries: StorageQueries) -> None:
        self._queries = queries

    def read(self, window_end_ms: int, window_s: int) -> list[WindowAggregate]:
        start_ms = window_end_ms - window_s * 1000
        try:
            rows = self._queries.window_totals(start_ms, window_end_ms)
        except storage_errors.StorageError as exc:
            raise DeliveryUnavailable(f"reading window {window_end_ms}: {exc}") from exc
        return [totals_to_aggregate(t) for t in rows if t.window_s == window_s]


class WindowSource(Protocol):
    def read(self, window_end_ms: int, window_s: int) -> list[WindowAggregate]: ...
