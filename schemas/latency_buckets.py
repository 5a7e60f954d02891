"""The latency bucket definition shared by Python and SQL.

One definition, used by the stream core's histogram, by the ClickHouse migrations (bucket keys of
raw events, the ``pwm_quantile`` function) and by every query that reads percentiles. Change it
only with a new migration: stored bucket counts are meaningless under another definition.

Buckets are logarithmic (the DDSketch mapping). For ``latency_ms > MIN_LATENCY_MS`` the key is
``ceil(log(latency_ms / MIN_LATENCY_MS) / log(GAMMA))``, clamped to ``[1, MAX_KEY]``; key 0 holds
everything at or below ``MIN_LATENCY_MS`` (including 0). Bucket ``k >= 1`` covers
``(MIN_LATENCY_MS * GAMMA**(k-1), MIN_LATENCY_MS * GAMMA**k]`` and is represented by
``MIN_LATENCY_MS * 2 * GAMMA**k / (GAMMA + 1)``, whose relative distance to any value inside the
bucket is at most ``(GAMMA - 1) / (GAMMA + 1)`` (< 1%).

A percentile ``q`` of ``n`` values is the representative of the bucket holding the value of rank
``floor(q * (n - 1))`` (0-based, lower rank) in sorted order: the first bucket, in key order, whose
cumulative count exceeds that rank.
"""

from __future__ import annotations

import math

GAMMA = 1.02
"""Ratio between consecutive bucket bounds."""

MIN_LATENCY_MS = 0.01
"""Latencies at or below this (10 microseconds) share bucket 0."""

MAX_KEY = 1100
"""Largest key: about 7.9 hours. Larger latencies are clamped into it."""

RELATIVE_ERROR = (GAMMA - 1.0) / (GAMMA + 1.0)
"""Worst-case relative error of a percentile read from the histogram (~0.0099)."""

_LOG_GAMMA = math.log(GAMMA)
_REPRESENTATIVE_FACTOR = MIN_LATENCY_MS * 2.0 / (GAMMA + 1.0)

SQL_KEY_EXPR = (
    "if({x} <= {min_ms}, 0, toUInt16(least({max_key}, greatest(1, "
    "ceil(log({x} / {min_ms}) / log({gamma}))))))"
)
"""ClickHouse expression of :func:`bucket_key` with ``{x}`` as the latency column."""


def bucket_key(latency_ms: float) -> int:
    """Return the bucket key of one latency in milliseconds."""
    if latency_ms <= MIN_LATENCY_MS:
        return 0
    key = math.ceil(math.log(latency_ms / MIN_LATENCY_MS) / _LOG_GAMMA)
    if key < 1:
        return 1
    return key if key < MAX_KEY else MAX_KEY


def bucket_value(key: int) -> float:
    """Return the representative latency (ms) of a bucket key."""
    if key <= 0:
        return 0.0
    return float(_REPRESENTATIVE_FACTOR * GAMMA**key)


def sql_key_expr(column: str) -> str:
    """Render :data:`SQL_KEY_EXPR` for a trusted column name (never user input)."""
    return SQL_KEY_EXPR.format(x=column, min_ms=MIN_LATENCY_MS, max_key=MAX_KEY, gamma=GAMMA)


def quantile_from_counts(counts: dict[int, int], q: float) -> float | None:
    """Return the ``q`` quantile (0..1) of a bucket-count map, or None when it is empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q!r}")
    total = 0
    for count in counts.values():
        total += count
    if total <= 0:
        return None
    rank = math.floor(q * (total - 1))
    seen = 0
    for key in sorted(counts):
        seen += counts[key]
        if seen > rank:
            return bucket_value(key)
    return bucket_value(max(counts))  # pragma: no cover - unreachable with positive counts
