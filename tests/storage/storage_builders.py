"""Builders for the storage tests: random request events and the flushes the core would hand over.

Accumulators are built the way the core builds them, with ``Accumulator.add(WireEvent(...))``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange

OUTCOMES = list(Outcome)


def proxy_id(pool: str, region: str, n: int) -> str:
    """A proxy id as fleet hosts send it: a hex digest, never an address."""
    return hashlib.sha256(f"{pool}/{region}/{n}".encode()).hexdigest()[:16]


def random_events(
    rng: random.Random,
    count: int,
    *,
    start_ms: int,
    span_ms: int,
    pools: Sequence[str],
    regions: Sequence[str],
    proxies_per_scope: int = 8,
) -> list[WireEvent]:
    """``count`` events spread over ``[start_ms, start_ms + span_ms)``, lognormal latencies."""
    events = []
    for i in range(count):
        pool = rng.choice(pools)
        region = rng.choice(regions)
        outcome = Outcome.SUCCESS if rng.random() < 0.8 else rng.choice(OUTCOMES)
        proxy = proxy_id(pool, region, rng.randrange(proxies_per_scope))
        events.append(
            WireEvent(
                event_id=f"e{i}-{rng.getrandbits(32):08x}",
                ts_ms=start_ms + rng.randrange(span_ms),
                pool=pool,
                region=region,
                outcome=outcome,
                latency_ms=rng.lognormvariate(4.0, 1.0),
                source_host="host-1",
                proxy_id=proxy,
                status_code=rng.choice([200, 204, 302, 404, 503]) if rng.random() < 0.9 else None,
                bytes_in=rng.randrange(10_000),
                bytes_out=rng.randrange(2_000),
                attempts=rng.randint(1, 3),
            )
        )
    return events


@dataclass
class FlushBuilder:
    """Turns events into flushes like the core: per-window partial sums plus offset ranges."""

    source: str
    partition: int = 0
    window_s: int = 10
    proxy_window_s: int = 60
    next_offset: int = 0
    flushes: list[Flush] = field(default_factory=list)

    def flush(self, events: Iterable[WireEvent], late_events: int = 0) -> Flush:
        scopes: dict[tuple[str, str, int], Accumulator] = {}
        proxies: dict[tuple[str, str, str, int], Accumulator] = {}
        count = 0
        for ev in events:
            count += 1
            start = ev.ts_ms - ev.ts_ms % (self.window_s * 1000)
            scopes.setdefault((ev.pool, ev.region, start), Accumulator()).add(ev)
            if ev.proxy_id is not None:
                pstart = ev.ts_ms - ev.ts_ms % (self.proxy_window_s * 1000)
                key = (ev.pool, ev.region, ev.proxy_id, pstart)
                proxies.setdefault(key, Accumulator()).add(ev)
        for acc in scopes.values():
            acc.late_events = late_events
        first = self.next_offset
        self.next_offset += max(1, count)
        flush = Flush(
            scopes=[
                Contribution(ScopeKey(pool, region), start, self.window_s, acc)
                for (pool, region, start), acc in sorted(scopes.items())
            ],
            proxies=[
                Contribution(ScopeKey(pool, region, proxy), start, self.proxy_window_s, acc)
                for (pool, region, proxy, start), acc in sorted(proxies.items())
            ],
            ranges=[SourceRange(self.source, self.partition, first, self.next_offset - 1)],
        )
        self.flushes.append(flush)
        return flush


def merged(accs: Iterable[Accumulator]) -> Accumulator:
    total = Accumulator()
    for acc in accs:
        total.merge(acc)
    return total


def exact_quantile(values: Sequence[float], q: float) -> float:
    """The value of lower rank floor(q * (n - 1)): the definition the histogram approximates."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]
