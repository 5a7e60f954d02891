"""Typed results of the storage query helpers (:mod:`stream_app.storage.queries`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from schemas.latency_buckets import quantile_from_counts
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import ScopeKey

__all__ = ["PercentileRow", "RestoredWindow", "WindowTotals", "finite_or_none"]


def finite_or_none(value: float) -> float | None:
    """Stored min/max of a window without latencies are +-inf: report them as None."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Everything stored for one scope over one window (or one range) at some resolution.

    ``distinct_proxies`` is an estimate (uniqCombined, ~1% error) for pool x region rows and 0
    for per-proxy rows. Rates and percentiles are derived from the counts, never averaged.
    """

    window_start_ms: int
    window_s: int
    pool: str
    region: str
    requests: int
    successes: int
    outcomes: dict[str, int] = field(default_factory=dict)
    status_classes: dict[str, int] = field(default_factory=dict)
    latency_buckets: dict[int, int] = field(default_factory=dict)
    latency_sum_ms: float = 0.0
    latency_min_ms: float | None = None
    latency_max_ms: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    attempts: int = 0
    late_events: int = 0
    distinct_proxies: int = 0
    proxy_id: str | None = None

    @property
    def success_rate(self) -> float | None:
        """Successes / requests, or None without requests (never a fake 0)."""
        return self.successes / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        return (self.requests - self.successes) / self.requests if self.requests else None

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.window_s

    def quantile(self, q: float) -> float | None:
        """The ``q`` latency quantile in ms from the bucket counts (Python side)."""
        return quantile_from_counts(self.latency_buckets, q)


@dataclass(frozen=True, slots=True)
class PercentileRow:
    """Latency quantiles (ms, from the bucket counts via ``pwm_quantile``) of one group.

    ``window_start_ms`` is None when the row covers the whole range; ``pool``/``region`` are
    None when the row covers all of them. A quantile is None when the group had no requests.
    """

    window_start_ms: int | None
    pool: str | None
    region: str | None
    requests: int
    quantiles: dict[float, float | None]


@dataclass(slots=True)
class RestoredWindow:
    """The stored partial sums of one open window, summed back into an :class:`Accumulator`.

    Limitation: only a distinct-proxy estimate is stored, not the proxy ids, so ``acc.proxies``
    is empty and ``distinct_proxies`` carries the stored estimate (0 for per-proxy rows).
    """

    scope: ScopeKey
    window_start_ms: int
    window_s: int
    acc: Accumulator
    distinct_proxies: int
