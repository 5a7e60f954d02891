"""Names of the storage schema's tables and what each level of the rollup cascade holds.

The DDL lives in the migrations (:mod:`schemas.migrations`); this module is what Python code
needs to address it: table names, the resolutions of the cascade and the retention rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "INGEST_TABLE",
    "PROXY_TABLE",
    "RAW_TABLE",
    "RESOLUTION_SECONDS",
    "RESOLUTION_TABLES",
    "SOURCE_OFFSETS_TABLE",
    "STATUS_TABLE",
    "TTL_RULES",
    "Resolution",
    "TtlRule",
    "resolution_for_range",
]

INGEST_TABLE = "flush_ingest"
"""The Null table every flush is inserted into; materialized views fan it out."""

PROXY_TABLE = "proxy_1m"
SOURCE_OFFSETS_TABLE = "source_offsets"
RAW_TABLE = "requests_raw"
STATUS_TABLE = "schema_migrations"


class Resolution(enum.StrEnum):
    """A level of the pool x region rollup cascade."""

    WINDOW = "10s"
    """The stream windows as written (10 s by default; each row carries its ``window_s``)."""
    MINUTE = "1m"
    HOUR = "1h"
    DAY = "1d"


RESOLUTION_SECONDS: dict[Resolution, int] = {
    Resolution.WINDOW: 10,
    Resolution.MINUTE: 60,
    Resolution.HOUR: 3_600,
    Resolution.DAY: 86_400,
}
"""Nominal length of one row at each resolution (the stream window may differ from 10 s)."""


def resolution_for_range(span_ms: int, max_points: int = 1_500) -> Resolution:
    """The finest resolution giving at most ``max_points`` windows over ``span_ms``.

    Long ranges read the coarse tables: a 90-day fleet-wide query over ``agg_1d`` scans 24
    times fewer rows than over ``agg_1h`` (see benchmarks/storage_query.py).
    """
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    for resolution, seconds in RESOLUTION_SECONDS.items():
        if span_ms <= max_points * seconds * 1000:
            return resolution
    return Resolution.DAY


RESOLUTION_TABLES: dict[Resolution, str] = {
    Resolution.WINDOW: "agg_10s",
    Resolution.MINUTE: "agg_1m",
    Resolution.HOUR: "agg_1h",
    Resolution.DAY: "agg_1d",
}


@dataclass(frozen=True, slots=True)
class TtlRule:
    """Retention of one table: ``column + INTERVAL <settings.<setting>> <unit>``."""

    table: str
    column: str
    unit: str  # "DAY" or "HOUR"
    setting: str  # the StorageSettings field holding the value


TTL_RULES: tuple[TtlRule, ...] = (
    TtlRule("agg_10s", "window_start", "DAY", "ttl_10s_days"),
    TtlRule("agg_1m", "window_start", "DAY", "ttl_1m_days"),
    TtlRule("agg_1h", "window_start", "DAY", "ttl_1h_days"),
    TtlRule("agg_1d", "window_start", "DAY", "ttl_1d_days"),
    TtlRule(PROXY_TABLE, "window_start", "DAY", "ttl_proxy_1m_days"),
    TtlRule(RAW_TABLE, "toDateTime(ts)", "HOUR", "ttl_raw_hours"),
)
