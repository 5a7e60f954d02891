"""Column-oriented rows for the storage inserts: a :class:`Flush`, raw events.

One flush becomes ONE insert into ``flush_ingest`` with three kinds of rows (``row_kind``):
``scope`` (pool x region partial sums), ``proxy`` (per-proxy partial sums) and ``offset`` (one
per source range, recording the last offset stored). Columns are built as plain lists in one
pass per column, which is what clickhouse-connect encodes fastest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.wire import WireEvent
from stream_app.core.contributions import Contribution, Flush

__all__ = ["INGEST_COLUMNS", "RAW_COLUMNS", "flush_columns", "raw_event_columns"]

INGEST_COLUMNS: tuple[str, ...] = (
    "row_kind",
    "window_start",
    "window_s",
    "pool",
    "region",
    "proxy_id",
    "requests",
    "successes",
    "outcomes",
    "status_classes",
    "latency_buckets",
    "latency_sum_ms",
    "latency_min_ms",
    "latency_max_ms",
    "bytes_in",
    "bytes_out",
    "attempts",
    "late_events",
    "proxies",
    "source",
    "partition",
    "first_offset",
    "last_offset",
)

RAW_COLUMNS: tuple[str, ...] = (
    "ts",
    "event_id",
    "pool",
    "region",
    "proxy_id",
    "outcome",
    "status_code",
    "latency_ms",
    "bytes_in",
    "bytes_out",
    "attempts",
    "target_domain",
    "source_host",
)


def flush_columns(flush: Flush) -> list[list[Any]]:
    """The columns (in :data:`INGEST_COLUMNS` order) of the one insert of ``flush``."""
    scopes = flush.scopes
    proxies = flush.proxies
    ranges = flush.ranges
    rows: list[Contribution] = [*scopes, *proxies]
    accs = [c.acc for c in rows]
    n_ranges = len(ranges)
    zeros = [0] * n_ranges
    blanks = [""] * n_ranges
    empty_maps: list[dict[Any, int]] = [{}] * n_ranges
    return [
        ["scope"] * len(scopes) + ["proxy"] * len(proxies) + ["offset"] * n_ranges,
        [c.window_start_ms // 1000 for c in rows] + zeros,
        [c.window_s for c in rows] + zeros,
        [c.scope.pool for c in rows] + blanks,
        [c.scope.region for c in rows] + blanks,
        [""] * len(scopes) + [c.scope.proxy_id or "" for c in proxies] + blanks,
        [a.requests for a in accs] + zeros,
        [a.successes for a in accs] + zeros,
        [a.outcomes for a in accs] + empty_maps,
        [a.status_classes for a in accs] + empty_maps,
        [a.latency_buckets for a in accs] + empty_maps,
        [a.latency_sum_ms for a in accs] + [0.0] * n_ranges,
        [a.latency_min_ms for a in accs] + [0.0] * n_ranges,
        [a.latency_max_ms for a in accs] + [0.0] * n_ranges,
        [a.bytes_in for a in accs] + zeros,
        [a.bytes_out for a in accs] + zeros,
        [a.attempts for a in accs] + zeros,
        [a.late_events for a in accs] + zeros,
        # Only pool x region rows count distinct proxies; a proxy row is one proxy.
        [list(c.acc.proxies) for c in scopes] + [[]] * (len(proxies) + n_ranges),
        [""] * len(rows) + [r.source for r in ranges],
        [0] * len(rows) + [r.partition for r in ranges],
        [0] * len(rows) + [r.first_offset for r in ranges],
        [0] * len(rows) + [r.last_offset for r in ranges],
    ]


def raw_event_columns(events: Sequence[WireEvent]) -> list[list[Any]]:
    """The columns (in :data:`RAW_COLUMNS` order) of raw events (``requests_raw``)."""
    return [
        [ev.ts_ms for ev in events],
        [ev.event_id for ev in events],
        [ev.pool for ev in events],
        [ev.region for ev in events],
        [ev.proxy_id or "" for ev in events],
        [str(ev.outcome) for ev in events],
        [ev.status_code or 0 for ev in events],
        [ev.latency_ms for ev in events],
        [ev.bytes_in for ev in events],
        [ev.bytes_out for ev in events],
        [ev.attempts for ev in events],
        [ev.target_domain or "" for ev in events],
        [ev.source_host for ev in events],
    ]
