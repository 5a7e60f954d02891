"""The SQL of the ClickHouse panels: which rollup tier a range reads, and the filters.

Every query reads one tier, chosen in SQL from the dashboard's range (the plugin's
``$__fromTime`` / ``$__toTime``): the finest tier that keeps the range within a bounded number
of rows and still holds its start (the tables' TTLs: 14 d, 90 d, 400 d, 5 y by default,
docs/storage.md). The choice is a constant expression (``tier_s``), so ClickHouse skips the
tiers not chosen without reading them: each tier is one branch of a ``UNION ALL`` guarded by
``tier_s = <its row length>``. The step of a series is Grafana's interval rounded up to a
multiple of the tier's rows (``step_s``), so a step never holds part of a row.

When every region is selected, the 1 m, 1 h and 1 d tiers are read from the pool-level rollups
(``agg_pool_*``, migration 0030: one row per pool instead of one per pool x region).
Per-proxy panels choose the same way between ``proxy_1m`` and its daily rollup ``proxy_1d``
(migration 0031).

Variables are multi-valued with a custom "All" value, ``'__all__'``, which Grafana inserts
as is (custom All values skip formatting): ``'__all__' IN (${pool:singlequote})`` is true
exactly when All is selected, and the column filter is then left out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_VALUE",
    "DB",
    "PROXY_SERIES_TIERS",
    "PROXY_TOTAL_TIERS",
    "SERIES_TIERS",
    "TOTAL_TIERS",
    "Tier",
    "all_selected",
    "in_filter",
    "tier_header",
    "tiered_rows",
]

DB = "proxywhirl"
"""The database of the docker-compose stack (PWM_STORAGE_DATABASE)."""

ALL_VALUE = "'__all__'"
"""The custom All value of the pool and region variables (inserted unformatted)."""

RANGE_S = "dateDiff('second', $__fromTime, $__toTime)"


@dataclass(frozen=True, slots=True)
class Tier:
    """One level of the rollup cascade as the dashboards read it."""

    row_s: int
    table: str
    pool_table: str | None
    max_range_s: int | None
    """Ranges up to this long read this tier (None: any range)."""
    retention_days: int
    """The tier's default TTL: a range starting earlier reads a coarser tier."""


SERIES_TIERS: tuple[Tier, ...] = (
    Tier(10, "agg_10s", None, 3_600, 14),
    Tier(60, "agg_1m", "agg_pool_1m", 2 * 86_400, 90),
    Tier(3_600, "agg_1h", "agg_pool_1h", 120 * 86_400, 400),
    Tier(86_400, "agg_1d", "agg_pool_1d", None, 1_826),
)
"""Time series: at most ~360 10 s rows, 2,880 minutes, 2,880 hours per scope."""

TOTAL_TIERS: tuple[Tier, ...] = (
    Tier(10, "agg_10s", None, 3_600, 14),
    Tier(60, "agg_1m", "agg_pool_1m", 6 * 3_600, 90),
    Tier(3_600, "agg_1h", "agg_pool_1h", 7 * 86_400, 400),
    Tier(86_400, "agg_1d", "agg_pool_1d", None, 1_826),
)
"""Totals over the whole range (tables): coarser rows, as no step has to be drawn. They read
the rows that overlap the range (``overlap=True``): whole minutes, hours or UTC days."""

PROXY_SERIES_TIERS: tuple[Tier, ...] = (
    Tier(60, "proxy_1m", None, 90 * 86_400, 90),
    Tier(86_400, "proxy_1d", None, None, 400),
)
"""One proxy's history: its minutes while ``proxy_1m`` holds the range, days before
(``proxy_1d``, migration 0031)."""

PROXY_TOTAL_TIERS: tuple[Tier, ...] = (
    Tier(60, "proxy_1m", None, 2 * 86_400, 90),
    Tier(86_400, "proxy_1d", None, None, 400),
)
"""Per-proxy totals over the range (Top offenders): minutes up to 2 days, days beyond (one row
per proxy and day instead of 1,440)."""


def all_selected(variable: str) -> str:
    """True exactly when the variable's All value is selected."""
    return f"{ALL_VALUE} IN (${{{variable}:singlequote}})"


def in_filter(column: str, variable: str) -> str:
    """``column`` among the variable's values, or anything when All is selected."""
    return f"({all_selected(variable)} OR {column} IN (${{{variable}:singlequote}}))"


def _tier_expr(tiers: tuple[Tier, ...]) -> str:
    cases = []
    for tier in tiers[:-1]:
        cases.append(
            f"{RANGE_S} <= {tier.max_range_s} AND $__fromTime >= now() - INTERVAL "
            f"{tier.retention_days} DAY, {tier.row_s}"
        )
    return f"multiIf({', '.join(cases)}, {tiers[-1].row_s})"


def tier_header(tiers: tuple[Tier, ...]) -> str:
    """``WITH tier_s, step_s``: the tier's row length and the step of a series (seconds)."""
    return (
        f"WITH {_tier_expr(tiers)} AS tier_s, "
        "toUInt32(intDiv(greatest($__interval_s, tier_s) + tier_s - 1, tier_s) * tier_s) "
        "AS step_s"
    )


def tiered_rows(
    tiers: tuple[Tier, ...],
    columns: str,
    *,
    by_region: bool = False,
    overlap: bool = False,
    where: str | None = None,
) -> str:
    """A ``(SELECT ... UNION ALL ...)`` of the stored rows of the chosen tier whose start is in
    the range (``overlap``: that overlap it), of the selected pools and regions.
    ``by_region``: the caller needs the region column, so the pool-level rollups are never
    read. ``where``: a further condition on every branch (so each tier's read applies it)."""
    pool = in_filter("pool", "pool")
    branches = []
    for tier in tiers:
        time = (
            f"window_start > $__fromTime - INTERVAL {tier.row_s} SECOND "
            "AND window_start <= $__toTime"
            if overlap
            else "$__timeFilter(window_start)"
        )
        if where is not None:
            time = f"{time} AND {where}"
        head = f"SELECT {columns} FROM {DB}.%s WHERE tier_s = {tier.row_s}"
        if tier.pool_table is None or by_region:
            branches.append(
                f"{head % tier.table} AND {time} AND {pool} AND {in_filter('region', 'region')}"
            )
            continue
        branches.append(
            f"{head % tier.table} AND NOT ({all_selected('region')}) AND {time} AND {pool} "
            "AND region IN (${region:singlequote})"
        )
        branches.append(
            f"{head % tier.pool_table} AND {all_selected('region')} AND {time} AND {pool}"
        )
    return "(" + " UNION ALL ".join(branches) + ")"
