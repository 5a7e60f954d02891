"""A brute-force model of the window aggregator, written for obviousness, not speed.

It replays the same operations (add a record, flush, close) on raw events: it decides lateness
from its own watermark, keeps every accepted event, and computes each closed window's aggregate
from scratch from the events it holds, with the shared bucket definition. Tests compare the real
aggregator against it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from schemas.events import Outcome
from schemas.latency_buckets import bucket_key
from schemas.wire import WireEvent


def status_class_of(code: int | None) -> str:
    if code is None:
        return "none"
    return {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}.get(code // 100, "none")


@dataclass
class Expected:
    """A window aggregate computed from raw events (sum with math.fsum)."""

    requests: int
    successes: int
    outcomes: dict[str, int]
    status_classes: dict[str, int]
    buckets: dict[int, int]
    sum_ms: float
    min_ms: float | None
    max_ms: float | None
    bytes_in: int
    bytes_out: int
    attempts: int
    distinct_proxies: int
    late_events: int = 0


def expected_of(events: list[WireEvent], late_events: int = 0) -> Expected:
    latencies = [e.latency_ms for e in events]
    buckets: Counter[int] = Counter(bucket_key(v) for v in latencies)
    return Expected(
        requests=len(events),
        successes=sum(1 for e in events if e.outcome == Outcome.SUCCESS),
        outcomes=dict(Counter(str(e.outcome) for e in events)),
        status_classes=dict(Counter(status_class_of(e.status_code) for e in events)),
        buckets=dict(buckets),
        sum_ms=math.fsum(latencies),
        min_ms=min(latencies) if latencies else None,
        max_ms=max(latencies) if latencies else None,
        bytes_in=sum(e.bytes_in for e in events),
        bytes_out=sum(e.bytes_out for e in events),
        attempts=sum(e.attempts for e in events),
        distinct_proxies=len({e.proxy_id for e in events if e.proxy_id is not None}),
        late_events=late_events,
    )


@dataclass
class ReferenceWatermark:
    """The watermark rules of the design, restated plainly."""

    grace_ms: int
    idle_timeout_ms: int
    max_future_skew_ms: int | None
    value: int | None = None
    anchor_value: int | None = None
    anchor_wall: int | None = None

    def advance(self, now_ms: int) -> None:
        if self.anchor_value is None or self.anchor_wall is None:
            return
        idle = now_ms - self.anchor_wall - self.idle_timeout_ms
        if idle > 0:
            candidate = self.anchor_value + idle
            if self.value is None or candidate > self.value:
                self.value = candidate

    def observe(self, newest_ms: int, now_ms: int) -> None:
        if self.max_future_skew_ms is not None:
            newest_ms = min(newest_ms, now_ms + self.max_future_skew_ms)
        before = self.value
        candidate = newest_ms - self.grace_ms
        if before is None or candidate > before:
            self.value = candidate
        if before is None or newest_ms > before:
            self.anchor_value = self.value
            self.anchor_wall = now_ms


WindowKey = tuple[int, str, str]  # (window start, pool, region)
ProxyKey = tuple[int, str, str, str]  # (proxy window start, pool, region, proxy id)


@dataclass
class ReferenceAggregator:
    window_s: int
    grace_ms: int
    proxy_window_s: int
    idle_timeout_ms: int
    max_future_skew_ms: int | None = None
    watermark: ReferenceWatermark = field(init=False)
    events: dict[WindowKey, list[WireEvent]] = field(default_factory=lambda: defaultdict(list))
    proxy_events: dict[ProxyKey, list[WireEvent]] = field(default_factory=lambda: defaultdict(list))
    closed: set[WindowKey] = field(default_factory=set)
    closed_proxies: set[ProxyKey] = field(default_factory=set)
    late: list[WireEvent] = field(default_factory=list)
    late_on_window: dict[WindowKey, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        self.watermark = ReferenceWatermark(
            self.grace_ms, self.idle_timeout_ms, self.max_future_skew_ms
        )

    def add(self, record: list[WireEvent], now_ms: int) -> None:
        wm = self.watermark.value  # the idle rule runs at close only
        window_ms = self.window_s * 1000
        proxy_ms = self.proxy_window_s * 1000
        for e in record:
            start = (e.ts_ms // window_ms) * window_ms
            if wm is not None and start + window_ms <= wm:
                self.late.append(e)
                # Reported on the scope's window that holds the watermark (created if needed).
                current = (wm // window_ms) * window_ms
                self.events.setdefault((current, e.pool, e.region), [])
                self.late_on_window[(current, e.pool, e.region)] += 1
                continue
            self.events[(start, e.pool, e.region)].append(e)
            if e.proxy_id is not None:
                pstart = (e.ts_ms // proxy_ms) * proxy_ms
                self.proxy_events[(pstart, e.pool, e.region, e.proxy_id)].append(e)
        if record:
            self.watermark.observe(max(e.ts_ms for e in record), now_ms)

    def close(self, now_ms: int) -> tuple[dict[WindowKey, Expected], dict[ProxyKey, Expected]]:
        self.watermark.advance(now_ms)
        wm = self.watermark.value
        scopes: dict[WindowKey, Expected] = {}
        proxies: dict[ProxyKey, Expected] = {}
        if wm is None:
            return scopes, proxies
        for key, evs in self.events.items():
            if key not in self.closed and key[0] + self.window_s * 1000 <= wm:
                self.closed.add(key)
                scopes[key] = expected_of(evs, self.late_on_window.get(key, 0))
        for pkey, evs in self.proxy_events.items():
            if pkey not in self.closed_proxies and pkey[0] + self.proxy_window_s * 1000 <= wm:
                self.closed_proxies.add(pkey)
                proxies[pkey] = expected_of(evs)
        return scopes, proxies
