"""What a :class:`stream_app.core.aggregator.WindowAggregator` reports: its statistics and the
windows one ``close_due_windows`` call closed."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.aggregates import WindowAggregate

__all__ = ["AggregatorStats", "ClosedWindows"]


@dataclass(frozen=True, slots=True)
class AggregatorStats:
    """Counters and gauges of one aggregator (a snapshot)."""

    events_accepted: int
    late_events: int
    late_dropped_overflow: int
    proxy_overflow: int
    open_windows: int
    open_proxy_windows: int
    pending_events: int
    clock_skew_records: int
    watermark_ms: int | None
    out_of_range_events: int = 0
    """Events refused for their time (``clock_skew`` or ``too_old``, see ``record_time``)."""
    clock_skew_by_host: dict[str, int] | None = None
    """Events refused as ``clock_skew``, per source host (bounded)."""


@dataclass(frozen=True, slots=True)
class ClosedWindows:
    """What one ``close_due_windows`` call closed: pool x region and per-proxy aggregates."""

    scopes: list[WindowAggregate]
    proxies: list[WindowAggregate]
