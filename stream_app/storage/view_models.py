"""The shapes of the read views (:mod:`stream_app.storage.query_views`): what REST v1 returns,
and what the Grafana datasource, exports and the dashboard read, field by field."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.events import Outcome
from stream_app.storage.query_metrics import SeriesMetric, totals_metrics
from stream_app.storage.results import WindowTotals

__all__ = [
    "BaselineDeviation",
    "Freshness",
    "LatencyMs",
    "Metrics",
    "OffenderView",
    "OffendersView",
    "Point",
    "ScopeSummary",
    "SeriesView",
    "SummaryView",
]

Point = tuple[int, float | None]


class LatencyMs(BaseModel):
    """Latency percentiles (ms) of the merged histogram (within 1%); null without requests."""

    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


class Metrics(BaseModel):
    """Every metric of one group of requests; rates are fractions, null without requests."""

    requests: int
    successes: int
    success_rate: float | None
    error_rate: float | None
    error_rate_by_outcome: dict[str, float | None]
    status_5xx_rate: float | None
    latency_ms: LatencyMs
    throughput_rps: float | None
    bytes_in: int
    bytes_out: int
    distinct_proxies: int = Field(description="Estimate (about 1% error); 0 for proxy rows")
    late_events: int

    @classmethod
    def of(cls, totals: WindowTotals, span_s: float) -> Metrics:
        return cls.model_validate(totals_metrics(totals, span_s=span_s))


class Freshness(BaseModel):
    """How current the data is: end of the newest stored window and its age."""

    newest_data_end_ms: int | None
    age_s: float | None
    stale: bool


class BaselineDeviation(BaseModel):
    """The latest window of a scope against the baseline a baseline rule learnt for it."""

    rule_id: str
    metric: str
    value: float | None = Field(description="The rule's metric in the window (null: no data)")
    baseline: float | None = Field(description="The learnt mean (null: not learnt yet)")
    sigma: float | None = Field(description="Distance from the mean in standard deviations")
    breach: bool = Field(description="Beyond k_sigma and min_abs_change in the rule's direction")
    state: str = Field(description="judged | warming_up | not_learnt | no_data")


class ScopeSummary(BaseModel):
    pool: str
    region: str
    status: str = Field(description="ok | alerting | stale | no_data")
    window_start_ms: int | None
    window_end_ms: int | None
    freshness: Freshness
    active_alerts: int
    metrics: Metrics | None
    baselines: list[BaselineDeviation] = Field(
        default_factory=list, description="One per baseline rule covering the scope"
    )


class SummaryView(BaseModel):
    generated_at_ms: int
    settled_end_ms: int = Field(description="Windows ending by then count as closed")
    staleness_s: float
    scopes: list[ScopeSummary]


class SeriesView(BaseModel):
    metric: SeriesMetric
    outcome: Outcome | None
    pool: str | None
    region: str | None
    tier: str = Field(description="The rollup tier read: 10s, 1m, 1h or 1d")
    table: str
    step_s: int
    start_ms: int
    end_ms: int
    points: list[Point] = Field(description="[step start ms, value or null (no data)]")
    freshness: Freshness


class OffenderView(BaseModel):
    proxy_id: str
    pool: str
    region: str
    metrics: Metrics
    series: list[Point]


class OffendersView(BaseModel):
    pool: str
    region: str | None
    order_by: str
    start_ms: int
    end_ms: int
    table: str
    step_s: int
    proxies: list[OffenderView]
