"""The one query layer over the stored aggregates: every reader (REST, Grafana, exports, the
dashboard, the demo) asks these functions, so a number is computed one way everywhere.

Series, latest windows and top offenders live in :mod:`.query_series`, alerts in
:mod:`.query_alerts`, the tier and step of a series in :mod:`.query_tiers`, metric derivation in
:mod:`.query_metrics`; :class:`StorageQueries` is the entry point to all of them.

Every value reaches ClickHouse as a server-side parameter (``{name:Type}``); the only text put
into SQL is trusted: the validated database name, table names of :mod:`stream_app.storage.tables`
and fixed fragments of this module. Time ranges are half-open ``[start_ms, end_ms)`` on the
window start, in UTC epoch milliseconds, at one resolution of the cascade (a 1h row covers the
hour it starts). Reads always GROUP BY: stored rows are partial sums that merge lazily.

Calls are synchronous (chDB has no async client); from asyncio use :func:`asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import ScopeKey
from stream_app.storage import query_alerts, query_baselines, query_series
from stream_app.storage.client import StorageClient, get_client
from stream_app.storage.engines import quote_identifier
from stream_app.storage.query_alerts import AlertFilter, AlertRow
from stream_app.storage.query_baselines import SavedBaselines
from stream_app.storage.query_series import OffenderOrder
from stream_app.storage.query_sql import (
    MEASURES,
    Filter,
    measures_of,
    optional_float,
    seconds_ceil,
    totals,
)
from stream_app.storage.query_tiers import TierChoice
from stream_app.storage.results import PercentileRow, RestoredWindow, WindowTotals
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import (
    PROXY_TABLE,
    RESOLUTION_TABLES,
    SOURCE_OFFSETS_TABLE,
    Resolution,
)

__all__ = ["StorageQueries"]


class StorageQueries:
    """Read helpers over one database."""

    def __init__(self, client: StorageClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)
        self.database = database

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> StorageQueries:
        return cls(get_client(settings), settings.database)

    def _table(self, resolution: Resolution | str) -> str:
        return f"{self._db}.{RESOLUTION_TABLES[Resolution(resolution)]}"

    def window_totals(
        self,
        start_ms: int,
        end_ms: int,
        resolution: Resolution | str = Resolution.WINDOW,
        *,
        pool: str | None = None,
        region: str | None = None,
    ) -> list[WindowTotals]:
        """Totals per (window, pool, region) at ``resolution``, ordered by pool, region, time.

        Windows without traffic have no row ("no data", never a fake 0).
        """
        where = Filter(start_ms, end_ms).equal("pool", pool).equal("region", region)
        rows = self._client.named_rows(
            f"""SELECT toUnixTimestamp(window_start) AS ws, window_s AS wsz, pool, region,
                       {MEASURES}, uniqCombinedMerge(proxies) AS distinct_proxies
                FROM {self._table(resolution)}
                WHERE {where.sql}
                GROUP BY ws, wsz, pool, region
                ORDER BY pool, region, ws, wsz""",  # noqa: S608
            parameters=where.parameters,
        )
        return [
            totals(r["ws"] * 1000, r["wsz"], r["pool"], r["region"], r, r["distinct_proxies"])
            for r in rows
        ]

    def range_totals(
        self,
        start_ms: int,
        end_ms: int,
        resolution: Resolution | str = Resolution.WINDOW,
        *,
        pool: str | None = None,
        region: str | None = None,
    ) -> list[WindowTotals]:
        """One row per (pool, region): everything within the range added up.

        ``window_start_ms`` is ``start_ms`` and ``window_s`` the range length (rounded up).
        """
        where = Filter(start_ms, end_ms).equal("pool", pool).equal("region", region)
        rows = self._client.named_rows(
            f"""SELECT pool, region, {MEASURES}, uniqCombinedMerge(proxies) AS distinct_proxies
                FROM {self._table(resolution)}
                WHERE {where.sql}
                GROUP BY pool, region
                ORDER BY pool, region""",  # noqa: S608
            parameters=where.parameters,
        )
        span_s = max(1, seconds_ceil(end_ms - start_ms))
        return [
            totals(start_ms, span_s, r["pool"], r["region"], r, r["distinct_proxies"]) for r in rows
        ]

    def percentiles(
        self,
        start_ms: int,
        end_ms: int,
        quantiles: Sequence[float],
        resolution: Resolution | str = Resolution.WINDOW,
        *,
        pool: str | None = None,
        region: str | None = None,
        by_window: bool = True,
        by_scope: bool = True,
    ) -> list[PercentileRow]:
        """Latency quantiles computed in SQL (``pwm_quantile``) on the merged bucket counts.

        ``by_window=False`` merges the whole range; ``by_scope=False`` merges all pools and
        regions that match the filters (fleet-wide).
        """
        if not quantiles:
            raise ValueError("at least one quantile is needed")
        for q in quantiles:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be within [0, 1], got {q!r}")
        where = Filter(start_ms, end_ms).equal("pool", pool).equal("region", region)
        parameters = dict(where.parameters)
        selects = []
        for i, q in enumerate(quantiles):
            parameters[f"q{i}"] = float(q)
            selects.append(f"pwm_quantile({{q{i}:Float64}}, buckets) AS q{i}")
        window_expr = "toUnixTimestamp(window_start)" if by_window else "toUInt32(0)"
        pool_expr, region_expr = ("pool", "region") if by_scope else ("''", "''")
        rows = self._client.named_rows(
            f"""SELECT ws, p, r, req, {", ".join(selects)}
                FROM (
                    SELECT {window_expr} AS ws, {pool_expr} AS p, {region_expr} AS r,
                           sum(requests) AS req, sumMap(latency_buckets) AS buckets
                    FROM {self._table(resolution)}
                    WHERE {where.sql}
                    GROUP BY ws, p, r
                )
                ORDER BY p, r, ws""",  # noqa: S608
            parameters=parameters,
        )
        return [
            PercentileRow(
                window_start_ms=int(row["ws"]) * 1000 if by_window else None,
                pool=row["p"] if by_scope else None,
                region=row["r"] if by_scope else None,
                requests=int(row["req"]),
                quantiles={float(q): optional_float(row[f"q{i}"]) for i, q in enumerate(quantiles)},
            )
            for row in rows
        ]

    def proxy_totals(
        self,
        start_ms: int,
        end_ms: int,
        *,
        pool: str | None = None,
        region: str | None = None,
        proxy_id: str | None = None,
    ) -> list[WindowTotals]:
        """Per-proxy totals per window (``proxy_1m``), ordered by pool, region, proxy, time."""
        where = (
            Filter(start_ms, end_ms)
            .equal("pool", pool)
            .equal("region", region)
            .equal("proxy_id", proxy_id)
        )
        rows = self._client.named_rows(
            f"""SELECT toUnixTimestamp(window_start) AS ws, window_s, pool, region, proxy_id,
                       {MEASURES}
                FROM {self._db}.{PROXY_TABLE}
                WHERE {where.sql}
                GROUP BY ws, window_s, pool, region, proxy_id
                ORDER BY pool, region, proxy_id, ws, window_s""",  # noqa: S608
            parameters=where.parameters,
        )
        return [
            totals(
                r["ws"] * 1000, r["window_s"], r["pool"], r["region"], r, 0, proxy_id=r["proxy_id"]
            )
            for r in rows
        ]

    def pools_regions(self, since_ms: int = 0) -> list[tuple[str, str]]:
        """Every (pool, region) with data in a day starting at or after ``since_ms``'s day."""
        rows = self._client.named_rows(
            f"""SELECT DISTINCT pool, region FROM {self._table(Resolution.DAY)}
                WHERE window_start >= toStartOfDay(toDateTime({{since_s:UInt32}}, 'UTC'))
                ORDER BY pool, region""",  # noqa: S608
            parameters={"since_s": max(0, since_ms // 1000)},
        )
        return [(str(r["pool"]), str(r["region"])) for r in rows]

    def series(
        self, choice: TierChoice, *, pool: str | None = None, region: str | None = None
    ) -> dict[int, WindowTotals]:
        """Step start (ms) -> totals per step of ``choice`` (:func:`.query_tiers.choose_tier`);
        steps without data are absent."""
        return query_series.scope_series(self._client, self._db, choice, pool=pool, region=region)

    def proxy_series(
        self,
        choice: TierChoice,
        proxy_ids: Sequence[str],
        *,
        pool: str | None = None,
        region: str | None = None,
    ) -> dict[str, dict[int, WindowTotals]]:
        """Proxy id -> step start (ms) -> totals, from ``proxy_1m``."""
        return query_series.proxy_series(
            self._client, self._db, choice, proxy_ids, pool=pool, region=region
        )

    def top_proxies(
        self,
        start_ms: int,
        end_ms: int,
        *,
        pool: str,
        region: str | None = None,
        order_by: OffenderOrder = "error_rate",
        min_requests: int = 1,
        limit: int = 10,
    ) -> list[WindowTotals]:
        """The worst proxies of a pool (and region) over the range, each with its totals."""
        return query_series.top_proxies(
            self._client,
            self._db,
            start_ms,
            end_ms,
            pool=pool,
            region=region,
            order_by=order_by,
            min_requests=min_requests,
            limit=limit,
        )

    def latest_windows(self, *, since_ms: int, settled_end_ms: int) -> list[WindowTotals]:
        """Per (pool, region), its newest window complete by ``settled_end_ms``."""
        return query_series.latest_windows(
            self._client, self._db, since_ms=since_ms, settled_end_ms=settled_end_ms
        )

    def newest_data(
        self,
        *,
        since_ms: int,
        pool: str | None = None,
        region: str | None = None,
        resolution: Resolution = Resolution.WINDOW,
    ) -> dict[tuple[str, str], int]:
        """(pool, region) -> end (ms) of its newest stored row (settled or not)."""
        return query_series.newest_data(
            self._client,
            self._db,
            since_ms=since_ms,
            pool=pool,
            region=region,
            resolution=resolution,
        )

    def active_alerts(self, where: AlertFilter, *, limit: int = 1_000) -> list[AlertRow]:
        """Alerts firing now (newest state change ``firing``)."""
        return query_alerts.active_alerts(self._client, self._db, where, limit=limit)

    def alert_history(
        self, where: AlertFilter, *, start_ms: int, end_ms: int, limit: int = 1_000
    ) -> list[AlertRow]:
        """Alert state changes whose incident overlaps the range, newest first."""
        return query_alerts.alert_history(
            self._client, self._db, where, start_ms=start_ms, end_ms=end_ms, limit=limit
        )

    def saved_baselines(self) -> SavedBaselines:
        """(rule id, scope key) -> the newest baseline the rule engines saved."""
        return query_baselines.saved_baselines(self._client, self._db)

    @property
    def client(self) -> StorageClient:
        """The storage client (for writers sharing it, e.g. the rule audit)."""
        return self._client

    def ping(self) -> None:
        """One trivial query: raises a StorageError when storage does not answer."""
        self._client.rows("SELECT 1")

    def last_offsets(self, source: str) -> dict[int, int]:
        """Partition -> the last offset stored from ``source`` (seek to it + 1 on restart)."""
        rows = self._client.named_rows(
            f"""SELECT partition, max(last_offset) AS stored_through
                FROM {self._db}.{SOURCE_OFFSETS_TABLE}
                WHERE source = {{source:String}}
                GROUP BY partition""",  # noqa: S608
            parameters={"source": source},
        )
        return {int(r["partition"]): int(r["stored_through"]) for r in rows}

    def restore_open_windows(self, since_ms: int) -> list[RestoredWindow]:
        """Stored partial sums of every window starting at or after ``since_ms``, per scope.

        Pool x region windows first (``agg_10s``), then per-proxy windows (``proxy_1m``). Proxy
        sets are not stored (only their distinct count): see :class:`RestoredWindow`.
        """
        parameters = {"since_s": max(0, seconds_ceil(since_ms))}
        since = "window_start >= toDateTime({since_s:UInt32}, 'UTC')"
        scope_rows = self._client.named_rows(
            f"""SELECT toUnixTimestamp(window_start) AS ws, window_s, pool, region,
                       '' AS proxy_id, {MEASURES}, uniqCombinedMerge(proxies) AS distinct_proxies
                FROM {self._table(Resolution.WINDOW)}
                WHERE {since}
                GROUP BY ws, window_s, pool, region
                ORDER BY pool, region, ws""",  # noqa: S608
            parameters=parameters,
        )
        proxy_rows = self._client.named_rows(
            f"""SELECT toUnixTimestamp(window_start) AS ws, window_s, pool, region, proxy_id,
                       {MEASURES}, toUInt64(0) AS distinct_proxies
                FROM {self._db}.{PROXY_TABLE}
                WHERE {since}
                GROUP BY ws, window_s, pool, region, proxy_id
                ORDER BY pool, region, proxy_id, ws""",  # noqa: S608
            parameters=parameters,
        )
        restored = []
        for row in [*scope_rows, *proxy_rows]:
            scope = ScopeKey(row["pool"], row["region"], row["proxy_id"] or None)
            restored.append(
                RestoredWindow(
                    scope,
                    int(row["ws"]) * 1000,
                    int(row["window_s"]),
                    _accumulator(measures_of(row)),
                    int(row["distinct_proxies"]),
                )
            )
        return restored


def _accumulator(measures: Sequence[Any]) -> Accumulator:
    (req, ok, outcomes, classes, buckets, lat_sum, lat_min, lat_max, b_in, b_out, att, late) = (
        measures
    )
    acc = Accumulator()
    acc.requests = int(req)
    acc.successes = int(ok)
    acc.outcomes = {str(k): int(v) for k, v in outcomes.items()}
    acc.status_classes = {str(k): int(v) for k, v in classes.items()}
    acc.latency_buckets = {int(k): int(v) for k, v in buckets.items()}
    acc.latency_sum_ms = float(lat_sum)
    acc.latency_min_ms = float(lat_min)
    acc.latency_max_ms = float(lat_max)
    acc.bytes_in = int(b_in)
    acc.bytes_out = int(b_out)
    acc.attempts = int(att)
    acc.late_events = int(late)
    return acc
