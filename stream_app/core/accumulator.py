"""Mergeable per-scope accumulators.

An :class:`Accumulator` holds what one scope (pool x region, or one proxy) saw in one window:
counters, a latency bucket map (:mod:`schemas.latency_buckets`) and the set of proxies. ``merge``
is associative and commutative, so partial accumulators (per flush, per partition, per worker) add
up to the same totals in any order, which is what makes idempotent partial writes and rollups work.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.events import Outcome
from schemas.latency_buckets import bucket_key
from schemas.wire import WireEvent

_SUCCESS = Outcome.SUCCESS
_INF = math.inf
_NEG_INF = -math.inf
_STATUS_CLASSES = {100: "1xx", 200: "2xx", 300: "3xx", 400: "4xx", 500: "5xx"}

OUTCOME_NAMES: dict[str, str] = {outcome: str(outcome.value) for outcome in Outcome}
"""Outcome -> its plain string, the key of the ``outcomes`` maps. Plain ``str`` keys (equal to
the enum members) keep those maps out of the garbage collector's tracking, like the other maps."""

_NO_PROXIES = cast(set[str], frozenset())


def status_class(status_code: int | None) -> str:
    """``"2xx"`` for 204, ``"none"`` for a request that got no HTTP status."""
    if status_code is None:
        return "none"
    return _STATUS_CLASSES.get(status_code // 100 * 100, "none")


class Accumulator:
    """Counters, latency buckets and proxy set of one scope in one window."""

    __slots__ = (
        "attempts",
        "bytes_in",
        "bytes_out",
        "late_events",
        "latency_buckets",
        "latency_max_ms",
        "latency_min_ms",
        "latency_sum_ms",
        "outcomes",
        "proxies",
        "requests",
        "status_classes",
        "successes",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.successes = 0
        self.outcomes: dict[str, int] = {}
        self.status_classes: dict[str, int] = {}
        self.latency_buckets: dict[int, int] = {}
        self.latency_sum_ms = 0.0
        self.latency_min_ms = _INF
        self.latency_max_ms = _NEG_INF
        self.bytes_in = 0
        self.bytes_out = 0
        self.attempts = 0
        self.proxies: set[str] = set()
        self.late_events = 0

    def add(self, ev: WireEvent) -> None:
        """Count one event."""
        self.requests += 1
        outcome = ev.outcome
        if outcome is _SUCCESS:
            self.successes += 1
        name = OUTCOME_NAMES[outcome]
        outcomes = self.outcomes
        outcomes[name] = outcomes.get(name, 0) + 1
        sc = status_class(ev.status_code)
        classes = self.status_classes
        classes[sc] = classes.get(sc, 0) + 1
        latency_ms = ev.latency_ms
        key = bucket_key(latency_ms)
        buckets = self.latency_buckets
        buckets[key] = buckets.get(key, 0) + 1
        self.latency_sum_ms += latency_ms
        if latency_ms < self.latency_min_ms:
            self.latency_min_ms = latency_ms
        if latency_ms > self.latency_max_ms:
            self.latency_max_ms = latency_ms
        self.bytes_in += ev.bytes_in
        self.bytes_out += ev.bytes_out
        self.attempts += ev.attempts
        if ev.proxy_id is not None:
            self.proxies.add(ev.proxy_id)

    def merge(self, other: Accumulator) -> None:
        """Add ``other`` into this accumulator (associative and commutative)."""
        self.requests += other.requests
        self.successes += other.successes
        # The three count maps, inlined (this runs per proxy per flush): copy into an empty map,
        # add key by key otherwise.
        outcomes = self.outcomes
        if outcomes:
            get = outcomes.get
            for name, count in other.outcomes.items():
                outcomes[name] = get(name, 0) + count
        else:
            self.outcomes = dict(other.outcomes)
        classes = self.status_classes
        if classes:
            get = classes.get
            for name, count in other.status_classes.items():
                classes[name] = get(name, 0) + count
        else:
            self.status_classes = dict(other.status_classes)
        buckets = self.latency_buckets
        if buckets:
            get_count = buckets.get
            for key, count in other.latency_buckets.items():
                buckets[key] = get_count(key, 0) + count
        else:
            self.latency_buckets = dict(other.latency_buckets)
        self.latency_sum_ms += other.latency_sum_ms
        if other.latency_min_ms < self.latency_min_ms:
            self.latency_min_ms = other.latency_min_ms
        if other.latency_max_ms > self.latency_max_ms:
            self.latency_max_ms = other.latency_max_ms
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.attempts += other.attempts
        if other.proxies:
            self.proxies |= other.proxies
        self.late_events += other.late_events

    def copy(self) -> Accumulator:
        """An independent accumulator with the same contents."""
        acc = Accumulator.__new__(Accumulator)
        acc.requests = self.requests
        acc.successes = self.successes
        acc.outcomes = dict(self.outcomes)
        acc.status_classes = dict(self.status_classes)
        acc.latency_buckets = dict(self.latency_buckets)
        acc.latency_sum_ms = self.latency_sum_ms
        acc.latency_min_ms = self.latency_min_ms
        acc.latency_max_ms = self.latency_max_ms
        acc.bytes_in = self.bytes_in
        acc.bytes_out = self.bytes_out
        acc.attempts = self.attempts
        acc.proxies = set(self.proxies)
        acc.late_events = self.late_events
        return acc

    def to_aggregate(self, scope: Scope, window_start_ms: int, window_s: int) -> WindowAggregate:
        """Freeze into the published :class:`WindowAggregate`."""
        has_latency = self.requests > 0
        return WindowAggregate(
            scope=scope,
            window_start_ms=window_start_ms,
            window_end_ms=window_start_ms + window_s * 1000,
            window_s=window_s,
            requests=self.requests,
            successes=self.successes,
            outcomes=dict(self.outcomes),
            status_classes=dict(self.status_classes),
            latency=LatencyHistogram(
                buckets=dict(self.latency_buckets),
                count=self.requests,
                sum_ms=self.latency_sum_ms,
                min_ms=self.latency_min_ms if has_latency else None,
                max_ms=self.latency_max_ms if has_latency else None,
            ),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            attempts=self.attempts,
            distinct_proxies=len(self.proxies),
            late_events=self.late_events,
        )


def new_delta() -> Accumulator:
    """An empty accumulator for a pending delta of the hot loop.

    Its proxy set is a shared empty frozenset until the aggregator hands the delta on (the pool
    x region delta takes the proxy ids from the keys of the pending map; a proxy's delta gets
    its own one-id set when it is materialised), so the garbage collector tracks one object less
    per delta while events are counted. A mutation by mistake fails loudly; ``merge`` and ``|=``
    replace the frozenset rather than change it.
    """
    acc = Accumulator.__new__(Accumulator)
    acc.requests = 0
    acc.successes = 0
    acc.outcomes = {}
    acc.status_classes = {}
    acc.latency_buckets = {}
    acc.latency_sum_ms = 0.0
    acc.latency_min_ms = _INF
    acc.latency_max_ms = _NEG_INF
    acc.bytes_in = 0
    acc.bytes_out = 0
    acc.attempts = 0
    acc.proxies = _NO_PROXIES
    acc.late_events = 0
    return acc


def merged_parts(parts: Iterable[Accumulator]) -> Accumulator:
    """A new accumulator holding the merge of ``parts``, except their proxy sets.

    The same counts and sums as copying the first part and merging the others into it in order
    (the latency sum is added in that order), in one loop with local totals: this runs once per
    (window, pool, region) and flush over every proxy's delta.
    """
    acc = Accumulator()
    outcomes = acc.outcomes
    classes = acc.status_classes
    buckets = acc.latency_buckets
    get_outcome = outcomes.get
    get_class = classes.get
    get_bucket = buckets.get
    requests = successes = bytes_in = bytes_out = attempts = late_events = 0
    latency_sum_ms = 0.0
    latency_min_ms = _INF
    latency_max_ms = _NEG_INF
    for part in parts:
        requests += part.requests
        successes += part.successes
        if outcomes:
            for name, count in part.outcomes.items():
                outcomes[name] = get_outcome(name, 0) + count
        else:
            outcomes.update(part.outcomes)
        if classes:
            for name, count in part.status_classes.items():
                classes[name] = get_class(name, 0) + count
        else:
            classes.update(part.status_classes)
        if buckets:
            for key, count in part.latency_buckets.items():
                buckets[key] = get_bucket(key, 0) + count
        else:
            buckets.update(part.latency_buckets)
        latency_sum_ms += part.latency_sum_ms
        if part.latency_min_ms < latency_min_ms:
            latency_min_ms = part.latency_min_ms
        if part.latency_max_ms > latency_max_ms:
            latency_max_ms = part.latency_max_ms
        bytes_in += part.bytes_in
        bytes_out += part.bytes_out
        attempts += part.attempts
        late_events += part.late_events
    acc.requests = requests
    acc.successes = successes
    acc.latency_sum_ms = latency_sum_ms
    acc.latency_min_ms = latency_min_ms
    acc.latency_max_ms = latency_max_ms
    acc.bytes_in = bytes_in
    acc.bytes_out = bytes_out
    acc.attempts = attempts
    acc.late_events = late_events
    return acc
