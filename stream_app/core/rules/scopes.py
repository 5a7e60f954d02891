"""Scopes of alert rules and the merging of pool x region aggregates into wider scopes.

A rule's scope level is ``proxy`` (per-proxy aggregates), ``pool_region`` (the aggregates as
they close), or ``pool``, ``region``, ``fleet``: those are computed from the pool x region
aggregates of the same window by adding counts and bucket maps (never by averaging rates or
percentiles), after the rule's selector picked which pool x region aggregates take part.

:func:`merge_aggregates` is the same merge for whole :class:`WindowAggregate` objects, for
callers outside the engine (API, fleet-wide evaluation from stored rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.rules import ScopeLevel, Selector

_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """What one alert is about: a level and the names that identify it at that level."""

    level: ScopeLevel
    pool: str | None = None
    region: str | None = None
    proxy_id: str | None = None

    def key(self) -> str:
        """A stable string key (``level|pool|region|proxy_id``), used in saved state."""
        return _SEPARATOR.join(
            (self.level, self.pool or "", self.region or "", self.proxy_id or "")
        )

    @classmethod
    def from_key(cls, key: str) -> ScopeRef:
        """Inverse of :meth:`key`; raise ValueError for a malformed key."""
        parts = key.split(_SEPARATOR)
        if len(parts) != 4 or parts[0] not in _LEVEL_FIELDS:
            raise ValueError(f"malformed scope key {key!r}")
        level, pool, region, proxy_id = parts
        scope = cls(level, pool or None, region or None, proxy_id or None)  # type: ignore[arg-type]
        if scope.present_fields() != _LEVEL_FIELDS[level]:
            raise ValueError(f"scope key {key!r} does not fit level {level!r}")
        return scope

    def present_fields(self) -> frozenset[str]:
        names = (("pool", self.pool), ("region", self.region), ("proxy_id", self.proxy_id))
        return frozenset(name for name, value in names if value is not None)

    def labels(self) -> dict[str, str]:
        """The alert labels naming this scope (pool, region, proxy_id when relevant)."""
        out: dict[str, str] = {}
        if self.pool is not None:
            out["pool"] = self.pool
        if self.region is not None:
            out["region"] = self.region
        if self.proxy_id is not None:
            out["proxy_id"] = self.proxy_id
        return out

    def describe(self) -> str:
        """Human text for annotations: ``pool poolA in region eu``, ``the fleet``..."""
        if self.level == "fleet":
            return "the fleet"
        if self.level == "region":
            return f"region {self.region}"
        if self.level == "pool":
            return f"pool {self.pool}"
        text = f"pool {self.pool} in region {self.region}"
        return f"proxy {self.proxy_id} of {text}" if self.proxy_id else text

    def spans_pools(self) -> bool:
        """Region and fleet scopes cover many pools."""
        return self.level in ("region", "fleet")


_LEVEL_FIELDS: dict[str, frozenset[str]] = {
    "proxy": frozenset({"pool", "region", "proxy_id"}),
    "pool_region": frozenset({"pool", "region"}),
    "pool": frozenset({"pool"}),
    "region": frozenset({"region"}),
    "fleet": frozenset(),
}


def scope_of(agg: WindowAggregate, level: ScopeLevel) -> ScopeRef:
    """The scope at ``level`` that ``agg`` contributes to."""
    s = agg.scope
    if level == "pool_region":
        return ScopeRef(level, s.pool, s.region)
    if level == "proxy":
        return ScopeRef(level, s.pool, s.region, s.proxy_id)
    if level == "pool":
        return ScopeRef(level, s.pool)
    if level == "region":
        return ScopeRef(level, None, s.region)
    return ScopeRef(level)


class Totals:
    """Mergeable counts of one scope in one window: what every metric is derived from.

    Requests and successes add up at once; the outcome, status class and latency bucket maps
    are merged on first use (most rules need one of them, none needs all).
    """

    __slots__ = ("_aggs", "_buckets", "_classes", "_outcomes", "requests", "successes", "window_s")

    def __init__(self, agg: WindowAggregate, window_s: int) -> None:
        self._aggs = [agg]
        self.requests = agg.requests
        self.successes = agg.successes
        self.window_s = window_s
        self._outcomes: dict[str, int] | None = None
        self._classes: dict[str, int] | None = None
        self._buckets: dict[int, int] | None = None

    def add(self, agg: WindowAggregate) -> None:
        """Add another aggregate of the same window."""
        self._aggs.append(agg)
        self.requests += agg.requests
        self.successes += agg.successes

    @property
    def outcomes(self) -> dict[str, int]:
        if self._outcomes is None:
            self._outcomes = _merged([a.outcomes for a in self._aggs])
        return self._outcomes

    @property
    def status_classes(self) -> dict[str, int]:
        if self._classes is None:
            self._classes = _merged([a.status_classes for a in self._aggs])
        return self._classes

    @property
    def buckets(self) -> dict[int, int]:
        if self._buckets is None:
            self._buckets = _merged([a.latency.buckets for a in self._aggs])
        return self._buckets


def _merged(maps: list[Any]) -> dict[Any, int]:
    if len(maps) == 1:
        return maps[0]  # type: ignore[no-any-return]  # borrowed: never modified
    out: dict[Any, int] = {}
    for counts in maps:
        _add_counts(out, counts)
    return out


def _add_counts(into: dict[Any, int], other: Mapping[Any, int]) -> None:
    for key, count in other.items():
        into[key] = into.get(key, 0) + count


class ScopeFilter:
    """A rule selector with its verdicts remembered per (pool, region)."""

    __slots__ = ("_memo", "_selector")

    MAX_MEMO = 100_000

    def __init__(self, selector: Selector) -> None:
        self._selector = selector if selector.pool or selector.region else None
        self._memo: dict[tuple[str, str], bool] = {}

    def __call__(self, pool: str, region: str) -> bool:
        if self._selector is None:
            return True
        verdict = self._memo.get((pool, region))
        if verdict is None:
            if len(self._memo) >= self.MAX_MEMO:
                self._memo.clear()
            verdict = self._memo[(pool, region)] = self._selector.matches(pool, region)
        return verdict


_LEVEL_KEY: dict[str, Callable[[Scope], tuple[str | None, ...]]] = {
    "proxy": lambda s: (s.pool, s.region, s.proxy_id),
    "pool_region": lambda s: (s.pool, s.region, None),
    "pool": lambda s: (s.pool, None, None),
    "region": lambda s: (None, s.region, None),
    "fleet": lambda s: (None, None, None),
}


def rollup(
    aggregates: Iterable[WindowAggregate],
    level: ScopeLevel,
    selector: Selector | ScopeFilter,
    window_s: int,
) -> dict[ScopeRef, Totals]:
    """Totals per scope at ``level`` of the aggregates ``selector`` covers."""
    selected = selector if isinstance(selector, ScopeFilter) else ScopeFilter(selector)
    key_of = _LEVEL_KEY[level]
    groups: dict[tuple[str | None, ...], Totals] = {}
    for agg in aggregates:
        scope = agg.scope
        if not selected(scope.pool, scope.region):
            continue
        key = key_of(scope)
        totals = groups.get(key)
        if totals is None:
            groups[key] = Totals(agg, window_s)
        else:
            totals.add(agg)
    return {ScopeRef(level, *key): totals for key, totals in groups.items()}


def merge_aggregates(aggregates: Sequence[WindowAggregate], scope: Scope) -> WindowAggregate:
    """One aggregate adding up ``aggregates`` of the same window, labelled ``scope``.

    Counts, outcome and status maps and latency buckets add up; min/max combine; percentiles
    are then read from the merged buckets. ``distinct_proxies`` is the sum (a proxy belongs to
    one pool and region). Raise ValueError for an empty list or mixed windows.
    """
    if not aggregates:
        raise ValueError("nothing to merge")
    first = aggregates[0]
    outcomes: dict[str, int] = {}
    classes: dict[str, int] = {}
    buckets: dict[int, int] = {}
    mins: list[float] = []
    maxs: list[float] = []
    sums = dict.fromkeys(
        ("requests", "successes", "bytes_in", "bytes_out", "attempts", "distinct_proxies"), 0
    )
    late = 0
    latency_sum_ms = 0.0
    for agg in aggregates:
        if (agg.window_start_ms, agg.window_s) != (first.window_start_ms, first.window_s):
            raise ValueError(
                f"cannot merge window {agg.window_start_ms}/{agg.window_s}s into "
                f"{first.window_start_ms}/{first.window_s}s"
            )
        for name in sums:
            sums[name] += getattr(agg, name)
        late += agg.late_events
        _add_counts(outcomes, agg.outcomes)
        _add_counts(classes, agg.status_classes)
        _add_counts(buckets, agg.latency.buckets)
        latency_sum_ms += agg.latency.sum_ms
        if agg.latency.min_ms is not None:
            mins.append(agg.latency.min_ms)
        if agg.latency.max_ms is not None:
            maxs.append(agg.latency.max_ms)
    return WindowAggregate.model_validate(
        {
            "scope": scope,
            "window_start_ms": first.window_start_ms,
            "window_end_ms": first.window_end_ms,
            "window_s": first.window_s,
            **sums,
            "outcomes": outcomes,
            "status_classes": classes,
            "latency": LatencyHistogram(
                buckets=buckets,
                count=sum(buckets.values()),
                sum_ms=latency_sum_ms,
                min_ms=min(mins) if mins else None,
                max_ms=max(maxs) if maxs else None,
            ),
            "late_events": late,
        }
    )
