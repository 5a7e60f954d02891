"""The hot loop: route each event of a record to its window and proxy, and count it there.

Every event is touched once, in arrival order, while it is still in the CPU cache: it is counted
straight into the pending delta :class:`Accumulator` of its ``(window start, pool, region)`` and
proxy id (None for events without one). This is :meth:`Accumulator.add` inlined, with the status
class from a table and :func:`schemas.latency_buckets.bucket_key` computed by the very same float
operations, so the counts are exactly those of the reference definitions (tests hold it to a
brute-force recomputation). Consecutive events of one envelope share pool and usually window, so
the pending map is looked up per region through a small per-record cache.

Events whose window has already closed (its end at or below the watermark) are not counted: they
are returned to the caller, who handles lateness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from schemas.events import Outcome
from schemas.latency_buckets import GAMMA, MAX_KEY, MIN_LATENCY_MS
from schemas.wire import WireEvent
from stream_app.core.accumulator import OUTCOME_NAMES, Accumulator, new_delta, status_class

__all__ = ["PendingDeltas", "accumulate_record"]

PendingDeltas = dict[tuple[int, str, str], dict[str | None, Accumulator]]
"""Deltas not yet folded into the open windows: by (window start, pool, region), then proxy id."""

_LOG_GAMMA = math.log(GAMMA)  # the very value bucket_key divides by
_SUCCESS = Outcome.SUCCESS


class _StatusClasses(dict[int | None, str]):
    """Status class of every valid status code and of None; computes any other on demand."""

    def __missing__(self, code: int | None) -> str:
        return status_class(code)


_CLASS_OF = _StatusClasses({code: status_class(code) for code in range(100, 600)})
_CLASS_OF[None] = status_class(None)


def accumulate_record(
    events: Sequence[WireEvent],
    pending: PendingDeltas,
    window_ms: int,
    watermark_ms: int | None,
) -> list[tuple[int, WireEvent]]:
    """Count ``events`` into ``pending``; return the late ones with their window start."""
    late: list[tuple[int, WireEvent]] = []
    log = math.log
    ceil = math.ceil
    log_gamma = _LOG_GAMMA
    class_of = _CLASS_OF
    name_of = OUTCOME_NAMES
    success = _SUCCESS
    low = high = 0
    closed = False
    # Per-region cache of the pending map for the current (window, pool).
    regions: dict[str, dict[str | None, Accumulator]] = {}
    cached_pool: str | None = None
    for ev in events:
        ts = ev.ts_ms
        if ts >= high or ts < low:
            low = ts - ts % window_ms
            high = low + window_ms
            closed = watermark_ms is not None and high <= watermark_ms
            cached_pool = None
        if closed:
            late.append((low, ev))
            continue
        pool = ev.pool
        if pool != cached_pool:
            regions = {}
            cached_pool = pool
        region = ev.region
        by_proxy = regions.get(region)
        if by_proxy is None:
            key = (low, pool, region)
            by_proxy = pending.get(key)
            if by_proxy is None:
                by_proxy = pending[key] = {}
            regions[region] = by_proxy
        proxy_id = ev.proxy_id
        acc = by_proxy.get(proxy_id)
        if acc is None:
            acc = by_proxy[proxy_id] = new_delta()
        # Accumulator.add, inlined.
        acc.requests += 1
        outcome = ev.outcome
        if outcome is success:
            acc.successes += 1
        name = name_of[outcome]
        counts = acc.outcomes
        counts[name] = counts.get(name, 0) + 1
        sc = class_of[ev.status_code]
        classes = acc.status_classes
        classes[sc] = classes.get(sc, 0) + 1
        latency_ms = ev.latency_ms
        if latency_ms <= MIN_LATENCY_MS:
            bucket = 0
        else:
            bucket = ceil(log(latency_ms / MIN_LATENCY_MS) / log_gamma)
            if bucket < 1:
                bucket = 1
            elif bucket > MAX_KEY:
                bucket = MAX_KEY
        buckets = acc.latency_buckets
        buckets[bucket] = buckets.get(bucket, 0) + 1
        acc.latency_sum_ms += latency_ms
        if latency_ms < acc.latency_min_ms:
            acc.latency_min_ms = latency_ms
        if latency_ms > acc.latency_max_ms:
            acc.latency_max_ms = latency_ms
        acc.bytes_in += ev.bytes_in
        acc.bytes_out += ev.bytes_out
        acc.attempts += ev.attempts
    return late
