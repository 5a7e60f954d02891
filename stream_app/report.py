"""``proxywhirl-metrics report``: what the store holds, per pool and region, over a time range.

Reads the rollup table of the chosen resolution, adds the partial sums up per (pool, region) and
derives rates and percentiles from the counts. ``--json`` prints one JSON document (used by tests
and scripts); the default is a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TextIO

from stream_app.storage.queries import StorageQueries
from stream_app.storage.results import WindowTotals
from stream_app.storage.tables import Resolution

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class ScopeReport:
    pool: str
    region: str
    requests: int
    successes: int
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    windows: int
    distinct_proxies: int
    late_events: int

    @classmethod
    def from_totals(cls, total: WindowTotals, windows: int) -> ScopeReport:
        return cls(
            pool=total.pool,
            region=total.region,
            requests=total.requests,
            successes=total.successes,
            success_rate=total.success_rate,
            p50_ms=total.quantile(0.5),
            p95_ms=total.quantile(0.95),
            p99_ms=total.quantile(0.99),
            windows=windows,
            distinct_proxies=total.distinct_proxies,
            late_events=total.late_events,
        )


def build_report(
    queries: StorageQueries, start_ms: int, end_ms: int, resolution: Resolution
) -> list[ScopeReport]:
    """One row per (pool, region) with data in ``[start_ms, end_ms)``."""
    windows: dict[tuple[str, str], int] = {}
    for row in queries.window_totals(start_ms, end_ms, resolution):
        key = (row.pool, row.region)
        windows[key] = windows.get(key, 0) + 1
    return [
        ScopeReport.from_totals(total, windows.get((total.pool, total.region), 0))
        for total in queries.range_totals(start_ms, end_ms, resolution)
    ]


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def write_report(rows: list[ScopeReport], out: TextIO, *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
        return
    out.write(
        f"{'pool':<14} {'region':<14} {'windows':>7} {'requests':>10} {'success':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'proxies':>7} {'late':>6}\n"
    )
    for r in rows:
        out.write(
            f"{r.pool:<14} {r.region:<14} {r.windows:7d} {r.requests:10d} "
            f"{_fmt(r.success_rate and r.success_rate * 100, '{:7.2f}%'):>8} "
            f"{_fmt(r.p50_ms, '{:.1f}'):>8} {_fmt(r.p95_ms, '{:.1f}'):>8} "
            f"{_fmt(r.p99_ms, '{:.1f}'):>8} {r.distinct_proxies:7d} {r.late_events:6d}\n"
        )
    if not rows:
        out.write("no data in this range\n")
