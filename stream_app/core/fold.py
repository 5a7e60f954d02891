"""Fold a list of events into one :class:`Accumulator` at C speed.

:func:`fold_events` gives exactly what calling :meth:`Accumulator.add` for every event gives (the
same counts, bucket keys, min, max and proxy set; the latency sum up to float summation order),
but walks the events once per field with ``map``/``Counter``/``sum``/``min``/``max`` instead of
running Python code per event. Bucket keys are computed by the same float operations as
:func:`schemas.latency_buckets.bucket_key` (divide by ``MIN_LATENCY_MS``, ``log``, divide by
``log(GAMMA)``, ``ceil``, clamp), so every key is bit-for-bit the one the shared definition gives.
Very short lists go through :meth:`Accumulator.add`, which is cheaper below a few events.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, truediv

from schemas.events import Outcome
from schemas.latency_buckets import GAMMA, MAX_KEY, MIN_LATENCY_MS, bucket_key
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator, status_class

__all__ = ["fold_events"]

SMALL_FOLD = 4
"""Below this many events a per-event loop is cheaper than one pass per field."""

_LOG_GAMMA = math.log(GAMMA)  # the very value bucket_key divides by
_log = math.log
_ceil = math.ceil
_SUCCESS = Outcome.SUCCESS
_latency = attrgetter("latency_ms")
_outcome = attrgetter("outcome")
_status = attrgetter("status_code")
_bytes_in = attrgetter("bytes_in")
_bytes_out = attrgetter("bytes_out")
_attempts = attrgetter("attempts")
_proxy_id = attrgetter("proxy_id")


def bucket_counts(latencies_ms: list[float], lowest_ms: float) -> dict[int, int]:
    """Count latencies per bucket key; ``lowest_ms`` is ``min(latencies_ms)``."""
    if lowest_ms <= MIN_LATENCY_MS:
        # Bucket 0 (and log of 0) needs the branch in bucket_key: rare, take the slow path.
        return Counter(map(bucket_key, latencies_ms))
    keys = Counter(
        map(
            _ceil,
            map(
                truediv,
                map(_log, map(truediv, latencies_ms, repeat(MIN_LATENCY_MS))),
                repeat(_LOG_GAMMA),
            ),
        )
    )
    if min(keys) >= 1 and max(keys) <= MAX_KEY:
        return keys
    clamped: dict[int, int] = {}
    for key, count in keys.items():
        key = 1 if key < 1 else min(key, MAX_KEY)
        clamped[key] = clamped.get(key, 0) + count
    return clamped


def fold_events(events: Sequence[WireEvent], *, with_proxies: bool = True) -> Accumulator:
    """Return the accumulator of ``events`` (``with_proxies=False`` leaves its proxy set empty)."""
    acc = Accumulator()
    count = len(events)
    if count < SMALL_FOLD:
        for ev in events:
            acc.add(ev)
        if not with_proxies:
            acc.proxies.clear()
        return acc
    latencies = list(map(_latency, events))
    lowest = min(latencies)
    outcomes: Counter[str] = Counter(map(_outcome, events))
    acc.requests = count
    acc.successes = outcomes.get(_SUCCESS, 0)
    acc.outcomes = outcomes
    classes: dict[str, int] = {}
    for code, n in Counter(map(_status, events)).items():
        name = status_class(code)
        classes[name] = classes.get(name, 0) + n
    acc.status_classes = classes
    acc.latency_buckets = bucket_counts(latencies, lowest)
    acc.latency_sum_ms = sum(latencies, 0.0)
    acc.latency_min_ms = lowest
    acc.latency_max_ms = max(latencies)
    acc.bytes_in = sum(map(_bytes_in, events))
    acc.bytes_out = sum(map(_bytes_out, events))
    acc.attempts = sum(map(_attempts, events))
    if with_proxies:
        proxies = set(map(_proxy_id, events))
        proxies.discard(None)
        acc.proxies = proxies
    return acc
