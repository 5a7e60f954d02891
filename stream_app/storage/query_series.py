"""Series, latest windows and top offenders: the reads behind REST v1 (and every other reader).

Called through :class:`stream_app.storage.queries.StorageQueries`. Steps are epoch-aligned
(``intDiv(window_start, step) * step``, as :class:`~.query_tiers.TierChoice` aligns them), and a
step without stored rows is simply absent from the result: callers turn it into an explicit
``null``, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from stream_app.storage.client import StorageClient
from stream_app.storage.query_sql import MEASURES, Filter, totals
from stream_app.storage.query_tiers import TierChoice
from stream_app.storage.results import WindowTotals
from stream_app.storage.tables import PROXY_TABLE, RESOLUTION_TABLES, Resolution

__all__ = [
    "OffenderOrder",
    "latest_windows",
    "newest_data",
    "proxy_series",
    "scope_series",
    "top_proxies",
]

OffenderOrder = Literal["error_rate", "latency_p95_ms"]


def _table(db: str, resolution: Resolution) -> str:
    return f"{db}.{RESOLUTION_TABLES[resolution]}"


def scope_series(
    client: StorageClient,
    db: str,
    choice: TierChoice,
    *,
    pool: str | None = None,
    region: str | None = None,
) -> dict[int, WindowTotals]:
    """Step start (ms) -> totals of the matching pools and regions in that step."""
    where = Filter(choice.start_ms, choice.end_ms).equal("pool", pool).equal("region", region)
    rows = client.named_rows(
        f"""SELECT intDiv(toUnixTimestamp(window_start), {{step_s:UInt32}}) * {{step_s:UInt32}}
                   AS step_start, {MEASURES}, uniqCombinedMerge(proxies) AS distinct_proxies
            FROM {_table(db, choice.resolution)}
            WHERE {where.sql}
            GROUP BY step_start
            ORDER BY step_start""",  # noqa: S608
        parameters={**where.parameters, "step_s": choice.step_s},
    )
    return {
        int(r["step_start"]) * 1000: totals(
            int(r["step_start"]) * 1000,
            choice.step_s,
            pool or "",
            region or "",
            r,
            r["distinct_proxies"],
        )
        for r in rows
    }


def proxy_series(
    client: StorageClient,
    db: str,
    choice: TierChoice,
    proxy_ids: Sequence[str],
    *,
    pool: str | None = None,
    region: str | None = None,
) -> dict[str, dict[int, WindowTotals]]:
    """Proxy id -> step start (ms) -> totals, from ``proxy_1m`` (the step is at least 1 min)."""
    if not proxy_ids:
        return {}
    where = (
        Filter(choice.start_ms, choice.end_ms)
        .equal("pool", pool)
        .equal("region", region)
        .within("proxy_id", proxy_ids)
    )
    rows = client.named_rows(
        f"""SELECT proxy_id,
                   intDiv(toUnixTimestamp(window_start), {{step_s:UInt32}}) * {{step_s:UInt32}}
                   AS step_start, {MEASURES}
            FROM {db}.{PROXY_TABLE}
            WHERE {where.sql}
            GROUP BY proxy_id, step_start
            ORDER BY proxy_id, step_start""",  # noqa: S608
        parameters={**where.parameters, "step_s": choice.step_s},
    )
    out: dict[str, dict[int, WindowTotals]] = {p: {} for p in proxy_ids}
    for r in rows:
        start_ms = int(r["step_start"]) * 1000
        out[str(r["proxy_id"])][start_ms] = totals(
            start_ms, choice.step_s, pool or "", region or "", r, 0, proxy_id=r["proxy_id"]
        )
    return out


def top_proxies(
    client: StorageClient,
    db: str,
    start_ms: int,
    end_ms: int,
    *,
    pool: str,
    region: str | None = None,
    order_by: OffenderOrder = "error_rate",
    min_requests: int = 1,
    limit: int = 10,
) -> list[WindowTotals]:
    """The ``limit`` proxies of a pool (and region) with the worst ``order_by`` over the range.

    Proxies with fewer than ``min_requests`` requests are left out (a proxy that failed its only
    request is not the worst offender). Ties go to the busier proxy, then the id.
    """
    where = Filter(start_ms, end_ms).equal("pool", pool).equal("region", region)
    score = (
        "(req - ok) / req" if order_by == "error_rate" else "pwm_quantile(0.95, buckets)"
    )  # fixed fragments only
    rows = client.named_rows(
        f"""SELECT proxy_id, p, r, {score} AS score, req AS m_requests, ok AS m_successes,
                   outcomes AS m_outcomes, classes AS m_status_classes,
                   buckets AS m_latency_buckets, lat_sum AS m_latency_sum_ms,
                   lat_min AS m_latency_min_ms, lat_max AS m_latency_max_ms,
                   b_in AS m_bytes_in, b_out AS m_bytes_out, att AS m_attempts,
                   late AS m_late_events
            FROM (
                SELECT proxy_id, any(pool) AS p, any(region) AS r,
                       sum(requests) AS req, sum(successes) AS ok,
                       sumMap(outcomes) AS outcomes, sumMap(status_classes) AS classes,
                       sumMap(latency_buckets) AS buckets, sum(latency_sum_ms) AS lat_sum,
                       min(latency_min_ms) AS lat_min, max(latency_max_ms) AS lat_max,
                       sum(bytes_in) AS b_in, sum(bytes_out) AS b_out, sum(attempts) AS att,
                       sum(late_events) AS late
                FROM {db}.{PROXY_TABLE}
                WHERE {where.sql}
                GROUP BY proxy_id
                HAVING req >= {{min_requests:UInt64}}
            )
            ORDER BY score DESC NULLS LAST, req DESC, proxy_id
            LIMIT {{limit:UInt32}}""",  # noqa: S608
        parameters={**where.parameters, "min_requests": min_requests, "limit": limit},
    )
    span_s = max(1, -(-(end_ms - start_ms) // 1000))
    return [
        totals(start_ms, span_s, str(r["p"]), str(r["r"]), r, 0, proxy_id=r["proxy_id"])
        for r in rows
    ]


def latest_windows(
    client: StorageClient,
    db: str,
    *,
    since_ms: int,
    settled_end_ms: int,
) -> list[WindowTotals]:
    """Per (pool, region), its newest window ending by ``settled_end_ms`` (and starting at or
    after ``since_ms``), all partial sums merged; ordered by pool, region."""
    where = Filter(since_ms, settled_end_ms)
    settled = "toUnixTimestamp(window_start) + window_s <= {settled_s:UInt32}"
    # Find each scope's newest settled window from the key columns first, then merge the
    # measures of those windows only (merging every window of the lookback costs ~30x more).
    rows = client.named_rows(
        f"""SELECT toUnixTimestamp(window_start) AS ws, window_s AS wsz, pool, region,
                   {MEASURES}, uniqCombinedMerge(proxies) AS distinct_proxies
            FROM {_table(db, Resolution.WINDOW)}
            WHERE {where.sql} AND {settled}
              AND (pool, region, window_start) GLOBAL IN (
                  SELECT pool, region, max(window_start)
                  FROM {_table(db, Resolution.WINDOW)}
                  WHERE {where.sql} AND {settled}
                  GROUP BY pool, region
              )
            GROUP BY ws, wsz, pool, region
            ORDER BY pool, region, wsz
            LIMIT 1 BY pool, region""",  # noqa: S608
        parameters={**where.parameters, "settled_s": max(0, settled_end_ms // 1000)},
    )
    return [
        totals(int(r["ws"]) * 1000, int(r["wsz"]), r["pool"], r["region"], r, r["distinct_proxies"])
        for r in rows
    ]


def newest_data(
    client: StorageClient,
    db: str,
    *,
    since_ms: int,
    pool: str | None = None,
    region: str | None = None,
    resolution: Resolution = Resolution.WINDOW,
) -> dict[tuple[str, str], int]:
    """(pool, region) -> end (ms) of its newest stored row at ``resolution``, settled or not."""
    where = Filter(since_ms, 2**32 * 1000 - 1).equal("pool", pool).equal("region", region)
    rows = client.named_rows(
        f"""SELECT pool, region, max(toUnixTimestamp(window_start) + window_s) AS end_s
            FROM {_table(db, resolution)}
            WHERE {where.sql}
            GROUP BY pool, region""",  # noqa: S608
        parameters=where.parameters,
    )
    return {(str(r["pool"]), str(r["region"])): int(r["end_s"]) * 1000 for r in rows}
