"""Names of the storage schema's tables and what each level of the rollup cascade holds.

The DDL lives in the migrations (:mod:`schemas.migrations`); this module is what Python code
needs to address it: table names, the resolutions of the cascade and the retention rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "INGEST_TABLE",
    "LOCAL_SUFFIX",
    "POOL_RESOLUTION_TABLES",
    "PROXY_DAY_TABLE",
    "PROXY_TABLE",
    "RAW_TABLE",
    "RESOLUTION_SECONDS",
    "RESOLUTION_TABLES",
    "SHARDING_KEYS",
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
PROXY_DAY_TABLE = "proxy_1d"
"""``proxy_1m`` summed per UTC day (migration 0031), for per-proxy reads over long ranges."""
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

POOL_RESOLUTION_TABLES: dict[Resolution, str] = {
    Resolution.MINUTE: "agg_pool_1m",
    Resolution.HOUR: "agg_pool_1h",
    Resolution.DAY: "agg_pool_1d",
}
"""Pool-level rollups (migration 0030): the same levels summed over regions, one row per pool
and period, for reads that select every region (the Grafana dashboards, docs/grafana.md)."""


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
    TtlRule("agg_pool_1m", "window_start", "DAY", "ttl_1m_days"),  # pool-level rollups (0030)
    TtlRule("agg_pool_1h", "window_start", "DAY", "ttl_1h_days"),
    TtlRule("agg_pool_1d", "window_start", "DAY", "ttl_1d_days"),
    TtlRule(PROXY_TABLE, "window_start", "DAY", "ttl_proxy_1m_days"),
    TtlRule(PROXY_DAY_TABLE, "window_start", "DAY", "ttl_proxy_1d_days"),  # 0031
    TtlRule(RAW_TABLE, "toDateTime(ts)", "HOUR", "ttl_raw_hours"),
)


LOCAL_SUFFIX = "_local"
"""Cluster mode: ``agg_10s`` is the Distributed table, ``agg_10s_local`` the replicated shard."""

SHARDING_KEYS: dict[str, str] = {
    INGEST_TABLE: "cityHash64(pool)",
    RAW_TABLE: "cityHash64(pool)",
    "alert_history": "cityHash64(fingerprint)",
    "rule_audit": "cityHash64(rule_id)",
    "alerting_state": "cityHash64(name)",
    "ingest_dead_letters": "cityHash64(source_host, batch_id)",
}
"""Cluster mode: the shard of each row written through a Distributed table.

Deterministic functions of the row only (never ``rand()``): a retried or rebuilt insert splits
into the same per-shard blocks, so each shard recognises its block by the insert's
deduplication token. ``flush_ingest`` is sharded by pool: all partial sums of a pool, of every
window and region and of its proxies, meet on one shard, where the AggregatingMergeTree
collapses them and the rollups see them, and a query for one pool can skip the other shards
(``optimize_skip_unused_shards``). The price is balance by pool: a pool carrying most of the
traffic loads one shard (as it already loads one Kafka partition). Tables filled by
materialized views get read-only Distributed tables (no key: a direct insert is refused), and
written tables not listed here are sharded by a hash of their ORDER BY key, which is right only
when a retry re-sends identical rows (a key holding a receive time is not: list the table here,
keyed by what identifies the retried record).
"""
