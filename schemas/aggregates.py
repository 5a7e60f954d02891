"""Window aggregates: what the stream core emits when a window closes (schema version 1).

Published on the ``<prefix>.windows`` topic, evaluated by alert rules and stored (as bucket
counts and sums) in ClickHouse. Rates and percentiles are derived, never stored averaged: merge
two aggregates by adding counts and bucket maps, then derive.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import LABEL_PATTERN, PROXY_ID_PATTERN, Outcome
from schemas.latency_buckets import quantile_from_counts

StatusClass = Literal["1xx", "2xx", "3xx", "4xx", "5xx", "none"]
NonNegative = Annotated[int, Field(ge=0)]


class LatencyHistogram(BaseModel):
    """Latency bucket counts (see :mod:`schemas.latency_buckets`) with exact sum, min and max."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    buckets: dict[int, NonNegative] = Field(default_factory=dict)
    count: NonNegative = 0
    sum_ms: Annotated[float, Field(ge=0.0)] = 0.0
    min_ms: float | None = None
    max_ms: float | None = None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in ms (within 1%), or None for an empty histogram."""
        return quantile_from_counts(self.buckets, q)


class Scope(BaseModel):
    """What an aggregate is about: a pool in a region, optionally one proxy of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pool: Annotated[str, Field(pattern=LABEL_PATTERN)]
    region: Annotated[str, Field(pattern=LABEL_PATTERN)]
    proxy_id: Annotated[str | None, Field(pattern=PROXY_ID_PATTERN)] = None


class WindowAggregate(BaseModel):
    """Everything one tumbling window saw for one scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    scope: Scope
    window_start_ms: NonNegative
    window_end_ms: NonNegative
    window_s: Annotated[int, Field(ge=1)]
    requests: NonNegative
    successes: NonNegative
    outcomes: dict[Outcome, NonNegative] = Field(default_factory=dict)
    status_classes: dict[StatusClass, NonNegative] = Field(default_factory=dict)
    latency: LatencyHistogram = Field(default_factory=LatencyHistogram)
    bytes_in: NonNegative = 0
    bytes_out: NonNegative = 0
    attempts: NonNegative = 0
    distinct_proxies: NonNegative = 0
    late_events: Annotated[
        int, Field(ge=0, description="Events for this scope that arrived after their window closed")
    ] = 0

    @property
    def success_rate(self) -> float | None:
        """Successes / requests, or None when the window had no requests (never a fake 0)."""
        return self.successes / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        """1 - success rate, or None when the window had no requests."""
        return (self.requests - self.successes) / self.requests if self.requests else None

    def outcome_rate(self, outcome: Outcome) -> float | None:
        """Share of requests that ended with ``outcome``, or None without requests."""
        return self.outcomes.get(outcome, 0) / self.requests if self.requests else None

    @property
    def throughput_rps(self) -> float:
        """Requests per second over the window."""
        return self.requests / self.window_s
