"""Shared pieces of the read queries: the measures every reader selects, WHERE clauses whose
values are server-side parameters, and the row -> :class:`WindowTotals` conversion.

Only trusted text is ever put into SQL here: fixed fragments and column names chosen by this
package. Every value (time bounds, pool, region, proxy ids, limits) travels as a
``{name:Type}`` parameter of clickhouse-connect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from stream_app.storage.results import WindowTotals, finite_or_none

__all__ = [
    "MEASURES",
    "MEASURE_EXPRS",
    "MEASURE_NAMES",
    "Filter",
    "measures_of",
    "optional_float",
    "seconds_ceil",
    "totals",
]

MEASURE_EXPRS: tuple[str, ...] = (
    "sum(requests)",
    "sum(successes)",
    "sumMap(outcomes)",
    "sumMap(status_classes)",
    "sumMap(latency_buckets)",
    "sum(latency_sum_ms)",
    "min(latency_min_ms)",
    "max(latency_max_ms)",
    "sum(bytes_in)",
    "sum(bytes_out)",
    "sum(attempts)",
    "sum(late_events)",
)
"""The merged measures of a group of stored rows, in :func:`totals` order."""

MEASURE_NAMES: tuple[str, ...] = (
    "m_requests",
    "m_successes",
    "m_outcomes",
    "m_status_classes",
    "m_latency_buckets",
    "m_latency_sum_ms",
    "m_latency_min_ms",
    "m_latency_max_ms",
    "m_bytes_in",
    "m_bytes_out",
    "m_attempts",
    "m_late_events",
)
"""The column names of :data:`MEASURES` (not the stored columns' own names: an alias equal to
a column it aggregates would shadow that column in the query)."""

MEASURES = ", ".join(
    f"{expr} AS {name}" for expr, name in zip(MEASURE_EXPRS, MEASURE_NAMES, strict=True)
)


def seconds_ceil(ms: int) -> int:
    return -(-ms // 1000)


class Filter:
    """WHERE clauses from fixed fragments, values as parameters."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        if end_ms < start_ms:
            raise ValueError(f"end_ms ({end_ms}) is before start_ms ({start_ms})")
        self.clauses = [
            "window_start >= toDateTime({start_s:UInt32}, 'UTC')",
            "window_start < toDateTime({end_s:UInt32}, 'UTC')",
        ]
        # [start_ms, end_ms) on second-aligned window starts
        self.parameters: dict[str, Any] = {
            "start_s": min(max(0, seconds_ceil(start_ms)), 0xFFFFFFFF),
            "end_s": min(max(0, seconds_ceil(end_ms)), 0xFFFFFFFF),
        }

    def equal(self, column: str, value: str | None) -> Filter:
        """``column = value`` when a value is given (``column`` is trusted text)."""
        if value is not None:
            self.clauses.append(f"{column} = {{{column}:String}}")
            self.parameters[column] = value
        return self

    def within(self, column: str, values: Sequence[str] | None) -> Filter:
        """``column IN values`` when values are given."""
        if values is not None:
            self.clauses.append(f"{column} IN {{{column}_in:Array(String)}}")
            self.parameters[f"{column}_in"] = list(values)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


def optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def measures_of(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The :data:`MEASURES` columns of a named row, in :data:`MEASURE_NAMES` order."""
    return tuple(row[name] for name in MEASURE_NAMES)


def totals(
    window_start_ms: int,
    window_s: int,
    pool: str,
    region: str,
    row: Mapping[str, Any],
    distinct_proxies: int,
    *,
    proxy_id: str | None = None,
) -> WindowTotals:
    """A :class:`WindowTotals` from the :data:`MEASURES` columns of one row (by name)."""
    (req, ok, outcomes, classes, buckets, lat_sum, lat_min, lat_max, b_in, b_out, att, late) = (
        measures_of(row)
    )
    return WindowTotals(
        window_start_ms=int(window_start_ms),
        window_s=int(window_s),
        pool=pool,
        region=region,
        requests=int(req),
        successes=int(ok),
        outcomes={str(k): int(v) for k, v in outcomes.items()},
        status_classes={str(k): int(v) for k, v in classes.items()},
        latency_buckets={int(k): int(v) for k, v in buckets.items()},
        latency_sum_ms=float(lat_sum),
        latency_min_ms=finite_or_none(float(lat_min)),
        latency_max_ms=finite_or_none(float(lat_max)),
        bytes_in=int(b_in),
        bytes_out=int(b_out),
        attempts=int(att),
        late_events=int(late),
        distinct_proxies=int(distinct_proxies),
        proxy_id=proxy_id,
    )
