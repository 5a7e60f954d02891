"""What an export reads: the tier, the step, the SELECT and its time chunks. Pure: no I/O.

An export covers ``[start_ms, end_ms)`` of the pool x region aggregates (or, with ``proxies``,
the per-proxy ones of ``proxy_1m``), optionally restricted to some pools and regions. The tier
is chosen by :func:`stream_app.storage.query_tiers.choose_tier`, the same logic as REST v1:

- ``auto``: the tier and the step a ``/api/v1/series`` of the range reads (at most 1,500 steps
  per scope): 1 h reads ``agg_10s`` every 10 s, 90 days ``agg_1h`` every 2 h.
- ``10s``, ``1m``, ``1h``, ``1d``: rows of that length, from that tier, unless its retention
  has already dropped the start of the range: then the next coarser tier that still holds it
  (and :attr:`ExportPlan.reason` says so).

The rows come from ONE parameterised SELECT (:func:`export_sql`): every value, including the
time bounds and the filters, is a ``{name:Type}`` server-side parameter. It is run once per
*chunk*, a sub-range of whole steps holding about ``chunk_rows`` rows, oldest first: the
embedded engine runs inside this process, and one GROUP BY over a year would hold every group
of the year in memory; per chunk it holds one chunk's. The rows of the export are ordered by
window start, then pool, region (and proxy), across chunks too.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream_app.storage.engines import quote_identifier
from stream_app.storage.query_sql import MEASURES, Filter
from stream_app.storage.query_tiers import Retention, TierChoice, choose_tier
from stream_app.storage.tables import PROXY_TABLE, RESOLUTION_SECONDS, RESOLUTION_TABLES, Resolution

__all__ = [
    "AUTO",
    "DEFAULT_CHUNK_ROWS",
    "EXPORT_QUANTILES",
    "ExportFormat",
    "ExportPlan",
    "ExportRefused",
    "ExportRequest",
    "export_columns",
    "export_sql",
    "plan_export",
    "scope_columns",
    "scopes_sql",
]

AUTO = "auto"
DEFAULT_CHUNK_ROWS = 50_000
PROXY_STEP_S = 60
EXPORT_QUANTILES: tuple[tuple[str, float], ...] = (
    ("latency_p50_ms", 0.50),
    ("latency_p95_ms", 0.95),
    ("latency_p99_ms", 0.99),
)
_DAY_MS = 86_400_000


class ExportRefused(ValueError):
    """The export cannot be made as asked (poison: change the request)."""

    retriable = False


class ExportFormat(enum.StrEnum):
    """File formats, each ClickHouse's own output format."""

    CSV = "csv"
    NDJSON = "ndjson"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        return {
            ExportFormat.CSV: "text/csv; charset=utf-8",
            ExportFormat.NDJSON: "application/x-ndjson",
            ExportFormat.PARQUET: "application/vnd.apache.parquet",
        }[self]

    @property
    def suffix(self) -> str:
        return {"csv": ".csv", "ndjson": ".ndjson", "parquet": ".parquet"}[self.value]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What was asked: a range, a resolution (``auto`` or a tier), filters and a format."""

    start_ms: int
    end_ms: int
    resolution: str = AUTO
    pools: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    proxies: bool = False
    fmt: ExportFormat = ExportFormat.CSV

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ExportRefused(f"the range must end after it starts ({self.start_ms} >= end)")
        if self.resolution != AUTO and self.resolution not in {r.value for r in Resolution}:
            raise ExportRefused(f"resolution must be auto, 10s, 1m, 1h or 1d: {self.resolution!r}")


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """How an export is read: where from, at which step, over which aligned range."""

    request: ExportRequest
    resolution: Resolution
    """The tier read."""
    table: str
    """The table read (``agg_1h``, ``proxy_1m`` ...)."""
    step_s: int
    start_ms: int
    """The requested start aligned down to the step."""
    end_ms: int
    """The requested end aligned up to the step (exclusive)."""
    reason: str
    """Why this tier and step (retention fallbacks included)."""
    retention_days: dict[str, int] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return (self.end_ms - self.start_ms) // (self.step_s * 1000)

    def chunks(
        self, scopes: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> Iterator[tuple[int, int]]:
        """``[start_ms, end_ms)`` sub-ranges of whole steps holding about ``chunk_rows`` rows
        for ``scopes`` scopes (at least one step each), oldest first."""
        steps_per_chunk = max(1, chunk_rows // max(1, scopes))
        chunk_ms = steps_per_chunk * self.step_s * 1000
        start = self.start_ms
        while start < self.end_ms:
            end = min(self.end_ms, start + chunk_ms)
            yield start, end
            start = end


def _row_s(resolution: Resolution, window_s: int) -> int:
    if resolution is Resolution.WINDOW:
        return max(window_s, RESOLUTION_SECONDS[resolution])
    return RESOLUTION_SECONDS[resolution]


def plan_export(
    request: ExportRequest,
    *,
    now_ms: int,
    retention: Retention,
    proxy_ttl_days: int,
    window_s: int = 10,
) -> ExportPlan:
    """The tier, step and aligned range of ``request`` (see the module doc)."""
    if request.resolution == AUTO:
        choice = choose_tier(
            request.start_ms, request.end_ms, now_ms=now_ms, retention=retention, window_s=window_s
        )
        reason = (
            f"auto: the tier and step REST v1 series read for this range (at most 1,500 steps): "
            f"{RESOLUTION_TABLES[choice.resolution]} every {choice.step_s} s"
        )
    else:
        wanted = Resolution(request.resolution)
        choice = choose_tier(
            request.start_ms,
            request.end_ms,
            now_ms=now_ms,
            retention=retention,
            max_points=2**62,
            min_step_s=_row_s(wanted, window_s),
            window_s=window_s,
        )
        reason = f"{wanted.value} rows asked: {RESOLUTION_TABLES[choice.resolution]}"
        if choice.resolution is not wanted:
            reason = (
                f"{wanted.value} rows asked, but {RESOLUTION_TABLES[wanted]} keeps "
                f"{retention.days[wanted]} days and the range starts before that: read from "
                f"{RESOLUTION_TABLES[choice.resolution]}, the finest tier that still holds it"
            )
    retention_days = {RESOLUTION_TABLES[r]: d for r, d in retention.days.items()}
    if not request.proxies:
        return ExportPlan(
            request,
            choice.resolution,
            RESOLUTION_TABLES[choice.resolution],
            choice.step_s,
            choice.start_ms,
            choice.end_ms,
            reason,
            retention_days,
        )
    return _proxy_plan(request, choice, reason, now_ms, proxy_ttl_days, retention_days)


def _proxy_plan(
    request: ExportRequest,
    choice: TierChoice,
    reason: str,
    now_ms: int,
    proxy_ttl_days: int,
    retention_days: dict[str, int],
) -> ExportPlan:
    if request.start_ms < now_ms - proxy_ttl_days * _DAY_MS:
        raise ExportRefused(
            f"per-proxy rows ({PROXY_TABLE}) are kept {proxy_ttl_days} days "
            "(ttl_proxy_1m_days): the range starts before that; export without proxies"
        )
    step_s = math.ceil(max(choice.step_s, PROXY_STEP_S) / PROXY_STEP_S) * PROXY_STEP_S
    step_ms = step_s * 1000
    start = request.start_ms // step_ms * step_ms
    end = -(-request.end_ms // step_ms) * step_ms
    return ExportPlan(
        request,
        Resolution.MINUTE,
        PROXY_TABLE,
        step_s,
        start,
        end,
        f"per proxy: {PROXY_TABLE} every {step_s} s (the step of the scope tier, at least 1 min;"
        f" {reason})",
        {**retention_days, PROXY_TABLE: proxy_ttl_days},
    )


def _filter(plan: ExportPlan, start_ms: int, end_ms: int) -> Filter:
    request = plan.request
    return (
        Filter(start_ms, end_ms)
        .within("pool", list(request.pools) or None)
        .within("region", list(request.regions) or None)
    )


def scope_columns(plan: ExportPlan) -> tuple[str, ...]:
    return ("pool", "region", "proxy_id") if plan.request.proxies else ("pool", "region")


def export_sql(
    plan: ExportPlan, database: str, start_ms: int, end_ms: int
) -> tuple[str, dict[str, Any]]:
    """The SELECT of the rows of ``[start_ms, end_ms)`` (a chunk of the plan) and its
    parameters. The text is the same for every chunk of a plan; only parameters change."""
    where = _filter(plan, start_ms, end_ms)
    keys = ", ".join(scope_columns(plan))
    distinct = "" if plan.request.proxies else ", uniqCombinedMerge(proxies) AS m_distinct"
    distinct_out = "" if plan.request.proxies else ",\n       m_distinct AS distinct_proxies"
    quantiles = ",\n       ".join(
        f"pwm_quantile({q!r}, m_latency_buckets) AS {name}" for name, q in EXPORT_QUANTILES
    )
    sql = f"""SELECT fromUnixTimestamp64Milli(toInt64(step_start) * 1000, 'UTC') AS window_start,
       toUInt32({{step_s:UInt32}}) AS step_s, {keys},
       m_requests AS requests, m_successes AS successes,
       if(m_requests = 0, NULL, m_successes / m_requests) AS success_rate,
       if(m_requests = 0, NULL, (m_requests - m_successes) / m_requests) AS error_rate,
       m_outcomes AS outcomes, m_status_classes AS status_classes,
       {quantiles},
       m_latency_buckets AS latency_buckets, m_latency_sum_ms AS latency_sum_ms,
       if(isFinite(m_latency_min_ms), m_latency_min_ms, NULL) AS latency_min_ms,
       if(isFinite(m_latency_max_ms), m_latency_max_ms, NULL) AS latency_max_ms,
       m_bytes_in AS bytes_in, m_bytes_out AS bytes_out, m_attempts AS attempts,
       m_late_events AS late_events{distinct_out}
FROM (
    SELECT intDiv(toUnixTimestamp(window_start), {{step_s:UInt32}}) * {{step_s:UInt32}}
           AS step_start, {keys}, {MEASURES}{distinct}
    FROM {quote_identifier(database)}.{plan.table}
    WHERE {where.sql}
    GROUP BY step_start, {keys}
)
ORDER BY window_start, {keys}
SETTINGS date_time_output_format = 'iso', output_format_json_quote_64bit_integers = 0"""  # noqa: S608
    return sql, {**where.parameters, "step_s": plan.step_s}


def scopes_sql(plan: ExportPlan, database: str) -> tuple[str, dict[str, Any]]:
    """How many scopes (pool x region, or proxies) have rows in the plan's range."""
    where = _filter(plan, plan.start_ms, plan.end_ms)
    keys = ", ".join(scope_columns(plan))
    sql = f"""SELECT uniqExact({keys}) AS scopes
FROM {quote_identifier(database)}.{plan.table}
WHERE {where.sql}"""  # noqa: S608
    return sql, where.parameters


def export_columns(plan: ExportPlan) -> Sequence[str]:
    """The columns of the export, in order."""
    tail = () if plan.request.proxies else ("distinct_proxies",)
    return (
        "window_start",
        "step_s",
        *scope_columns(plan),
        "requests",
        "successes",
        "success_rate",
        "error_rate",
        "outcomes",
        "status_classes",
        *(name for name, _ in EXPORT_QUANTILES),
        "latency_buckets",
        "latency_sum_ms",
        "latency_min_ms",
        "latency_max_ms",
        "bytes_in",
        "bytes_out",
        "attempts",
        "late_events",
        *tail,
    )
