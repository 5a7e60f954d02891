"""Tumbling event-time windows per pool x region and per proxy: the stream core's aggregator.

Data flow (all in memory, no I/O):

``add(...)`` / ``add_columns(...)``
    One decoded record, judged and counted into pending deltas by the input side,
    :class:`stream_app.core.intake.RecordIntake` (late events, events refused for their time,
    offset ranges: see that module).
materialisation (inside ``flush`` and ``close_due``)
    Pending deltas are merged into the open-window state (:mod:`stream_app.core.fold`): the
    pool x region delta of a window is the merge of its proxies' deltas, and each proxy's delta
    also goes to its ``(proxy window, pool, region, proxy_id)`` (events without a proxy id count
    only at pool level). Deltas are kept until the next ``flush`` hands them over.
``flush() -> Flush``
    The deltas since the last flush as :class:`Contribution` rows (in no particular order), with
    the offset range per (source, partition) they cover. Summing every contribution ever flushed
    for one (window, scope) gives exactly that window's closed aggregate.
``close_due(now_ms)`` / ``close_due_windows(now_ms)``
    Applies the idle rule, materialises what is pending (kept for the next flush, so storage and
    closed aggregates agree whichever of flush and close runs first), then closes and releases
    every window whose end is at or below the watermark, also for keys that went quiet.

Memory is bounded: closed windows are released, per-proxy entries per proxy window are limited
(``max_proxies_per_window``; events of proxies past it count at pool level and in
``proxy_overflow``), and the late side output is bounded (``late_dropped_overflow``). Events
are not kept (only counted); pending deltas grow with the keys seen until the runtime flushes
(``stats.pending_events`` tells how many events they hold).

Errors: ``ValueError`` for a restore that does not fit the configuration. Nothing else is raised
for valid decoded events.
"""

from __future__ import annotations

from typing import Any

from schemas.aggregates import Scope, WindowAggregate
from stream_app.core.accumulator import Accumulator
from stream_app.core.aggregator_stats import AggregatorStats, ClosedWindows
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange
from stream_app.core.fold import fold_pending
from stream_app.core.intake import RecordIntake
from stream_app.core.open_windows import OpenWindows
from stream_app.core.watermark import WatermarkState
from stream_app.core.windows import WindowSpec

__all__ = ["AggregatorStats", "ClosedWindows", "WindowAggregator"]

ScopeTuple = tuple[str, str]
ProxyTuple = tuple[str, str, str]


class WindowAggregator(RecordIntake):
    """Pure windowed aggregation of request events (see the module docstring)."""

    def __init__(self, config: AggregatorConfig | None = None) -> None:
        super().__init__(config)
        config = self.config
        self.proxy_spec = WindowSpec(config.proxy_window_s, config.grace_ms)
        self._proxy_window_ms = self.proxy_spec.window_ms
        self._scopes: OpenWindows[ScopeTuple] = OpenWindows(self.spec)
        self._proxies: OpenWindows[ProxyTuple] = OpenWindows(
            self.proxy_spec, config.max_proxies_per_window
        )
        # Folded deltas not yet handed over by flush().
        self._unflushed_scopes: dict[tuple[int, str, str], Accumulator] = {}
        self._unflushed_proxies: dict[tuple[int, str, str], dict[str, Accumulator]] = {}
        self._proxy_overflow = 0

    @classmethod
    def from_settings(cls, settings: Any) -> WindowAggregator:
        """Build from a service settings object (see :meth:`AggregatorConfig.from_settings`)."""
        return cls(AggregatorConfig.from_settings(settings))

    # -- materialisation ---------------------------------------------------------------------

    def _materialize(self) -> None:
        """Fold pending deltas into the open windows; keep them for the next flush."""
        self._deferred.fold_into(self._pending)
        pending = self._pending
        if not pending:
            return
        self._pending = {}
        self._pending_events = 0
        self._proxy_overflow += fold_pending(
            pending,
            scopes=self._scopes,
            proxies=self._proxies,
            unflushed_scopes=self._unflushed_scopes,
            unflushed_proxies=self._unflushed_proxies,
            proxy_window_ms=self._proxy_window_ms,
        )

    # -- output ------------------------------------------------------------------------------

    def flush(self) -> Flush:
        """Hand over every delta since the last flush and the offset ranges they cover."""
        self._materialize()
        window_s = self.spec.window_s
        proxy_s = self.proxy_spec.window_s
        new = tuple.__new__  # skips the named tuples' Python-level __new__: one per row
        flush = Flush(
            scopes=[
                new(Contribution, (new(ScopeKey, (pool, region, None)), start, window_s, acc))
                for (start, pool, region), acc in self._unflushed_scopes.items()
            ],
            proxies=[
                new(Contribution, (new(ScopeKey, (pool, region, proxy)), start, proxy_s, acc))
                for (start, pool, region), by_proxy in self._unflushed_proxies.items()
                for proxy, acc in by_proxy.items()
            ],
            ranges=[
                SourceRange(source, partition, span[0], span[1])
                for (source, partition), span in self._ranges.items()
            ],
        )
        self._unflushed_scopes = {}
        self._unflushed_proxies = {}
        self._ranges = {}
        return flush

    def close_due(self, now_ms: int) -> list[WindowAggregate]:
        """Close due windows; return the pool x region aggregates (proxy windows are released).

        Use :meth:`close_due_windows` to get the closed per-proxy aggregates as well.
        """
        return self.close_due_windows(now_ms).scopes

    def close_due_windows(self, now_ms: int) -> ClosedWindows:
        """Advance the watermark, close every due window, and return their full aggregates.

        Pool x region aggregates are ordered by window start, then pool and region; per-proxy
        ones by window start, pool, region and proxy id. Deltas merged here are kept for the next
        :meth:`flush`.
        """
        watermark = self._watermark.advance(now_ms)
        self._materialize()
        if watermark is None:
            return ClosedWindows(scopes=[], proxies=[])
        window_s = self.spec.window_s
        scopes = [
            acc.to_aggregate(Scope(pool=key[0], region=key[1]), window_start, window_s)
            for window_start, key, acc in self._scopes.close_through(watermark)
        ]
        proxy_window_s = self.proxy_spec.window_s
        proxies = [
            acc.to_aggregate(
                Scope(pool=key[0], region=key[1], proxy_id=key[2]), window_start, proxy_window_s
            )
            for window_start, key, acc in self._proxies.close_through(watermark)
        ]
        return ClosedWindows(scopes=scopes, proxies=proxies)

    # -- restart -----------------------------------------------------------------------------

    def restore_open_window(
        self, scope: ScopeKey, window_start_ms: int, window_s: int, acc: Accumulator
    ) -> None:
        """Put back what storage already holds for a window that was open when a worker stopped.

        Restored sums count in the closed aggregate but are never flushed again. A proxy window
        past ``max_proxies_per_window`` is not restored (its requests count as overflow). Raises
        ValueError when ``window_s`` is not this aggregator's size for the scope's level or the
        start is not aligned.
        """
        spec = self.spec if scope.proxy_id is None else self.proxy_spec
        if window_s != spec.window_s or not spec.is_aligned(window_start_ms):
            raise ValueError(
                f"cannot restore a {window_s}s window at {window_start_ms} for {scope}: "
                f"this aggregator has {spec.window_s}s windows at that level"
            )
        if scope.proxy_id is None:
            self._scopes.merge(window_start_ms, (scope.pool, scope.region), acc)
        elif not self._proxies.merge(
            window_start_ms, (scope.pool, scope.region, scope.proxy_id), acc
        ):
            self._proxy_overflow += acc.requests

    def watermark_state(self) -> WatermarkState:
        """The watermark to save for a restart."""
        return self._watermark.state()

    def restore_watermark(self, state: WatermarkState, now_ms: int) -> None:
        """Continue from a saved watermark; the idle rule restarts at ``now_ms``."""
        self._watermark.restore(state, now_ms)

    def advance_idle(self, now_ms: int) -> int | None:
        """Apply the idle rule at ``now_ms`` without closing anything; return the watermark."""
        return self._watermark.advance(now_ms)

    def defer_idle(self, now_ms: int) -> None:
        """The input is known to be behind or stalled: do not count this time as idle."""
        self._watermark.defer_idle(now_ms)

    @property
    def watermark_ms(self) -> int | None:
        return self._watermark.value

    @property
    def stats(self) -> AggregatorStats:
        return AggregatorStats(
            events_accepted=self._events_accepted,
            late_events=self._late_events,
            late_dropped_overflow=self._late.dropped,
            proxy_overflow=self._proxy_overflow,
            open_windows=len(self._scopes),
            open_proxy_windows=len(self._proxies),
            pending_events=self._pending_events,
            clock_skew_records=self._watermark.skewed_records,
            watermark_ms=self._watermark.value,
            out_of_range_events=self._refused_events,
            clock_skew_by_host=dict(self._skewed_by_host.counts),
        )
