"""Tumbling event-time windows per pool x region and per proxy: the stream core's aggregator.

Data flow (all in memory, no I/O):

``add(events, source=, partition=, offset=, now_ms=)``
    One decoded record. Each event is judged against the watermark as it stood when the record
    arrived (:mod:`stream_app.core.watermark`; the idle rule moves it only in ``close_due``):
    an event whose pool x region window has already closed is *late* (see
    :mod:`stream_app.core.late`); every other event is counted at once into the pending delta
    of its ``(window, pool, region, proxy_id)`` (:func:`stream_app.core.ingest.accumulate_record`).
    Then the record moves the watermark.
materialisation (inside ``flush`` and ``close_due``)
    Pending deltas are merged into the open-window state: the pool x region delta of a window
    is the merge of its proxies' deltas, and each proxy's delta also goes to its ``(proxy
    window, pool, region, proxy_id)`` (events without a proxy id count only at pool level).
    Deltas are kept until the next ``flush`` hands them over.
``add_columns(batch, ...)``
    The same for a columnar record (schema v2): judged row by row with array operations, its
    rows counted at the next materialisation into exactly the deltas ``add`` would have built
    (:mod:`stream_app.core.columns`).
``flush() -> Flush``
    The deltas since the last flush as :class:`Contribution` rows (in no particular order), with
    the offset range per (source, partition) they cover. Summing every contribution ever flushed
    for one (window, scope) gives exactly that window's closed aggregate.
``close_due(now_ms)`` / ``close_due_windows(now_ms)``
    Applies the idle rule, materialises what is pending (kept for the next flush, so storage and
    closed aggregates agree whichever of flush and close runs first), then closes and releases
    every window whose end is at or below the watermark, also for keys that went quiet.

Late events of a scope are reported as ``late_events`` on the aggregate of that scope's window
that held the watermark when they arrived: the oldest window still open, so the next one emitted
for the scope (unless an older one was due but not yet closed). They are counted into that
window's delta, so storage sees them too, and the choice depends only on the watermark and the
record (a rebuilt flush is the same). If the scope had no traffic in that window, its aggregate
has ``requests == 0`` and only ``late_events``.

Memory is bounded: closed windows are released, per-proxy entries per proxy window are limited
(``max_proxies_per_window``; events of proxies past it count at pool level and in
``proxy_overflow``), and the late side output is bounded (``late_dropped_overflow``). Events
are not kept (only counted); pending deltas grow with the keys seen until the runtime flushes
(``stats.pending_events`` tells how many events they hold).

Errors: ``ValueError`` for a restore that does not fit the configuration. Nothing else is raised
for valid decoded events.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np

from schemas.aggregates import Scope, WindowAggregate
from schemas.column_batch import ColumnBatch
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator, new_delta
from stream_app.core.aggregator_stats import AggregatorStats, ClosedWindows
from stream_app.core.columns import MAX_DEFERRED_ROWS, DeferredRows, split_rows
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange
from stream_app.core.fold import fold_pending
from stream_app.core.ingest import PendingDeltas, accumulate_record
from stream_app.core.late import LateBuffer, LateEvent
from stream_app.core.open_windows import OpenWindows
from stream_app.core.record_time import (
    HostCounts,
    OutOfRange,
    OutOfRangeKind,
    RecordTimeBounds,
)
from stream_app.core.watermark import Watermark, WatermarkState
from stream_app.core.windows import WindowSpec

__all__ = ["AggregatorStats", "ClosedWindows", "WindowAggregator"]

_ts = attrgetter("ts_ms")

ScopeTuple = tuple[str, str]
ProxyTuple = tuple[str, str, str]


class WindowAggregator:
    """Pure windowed aggregation of request events (see the module docstring)."""

    def __init__(self, config: AggregatorConfig | None = None) -> None:
        self.config = config = config or AggregatorConfig()
        self.spec = WindowSpec(config.window_s, config.grace_ms)
        self.proxy_spec = WindowSpec(config.proxy_window_s, config.grace_ms)
        self._window_ms = self.spec.window_ms
        self._proxy_window_ms = self.proxy_spec.window_ms
        self._watermark = Watermark(
            grace_ms=config.grace_ms,
            idle_timeout_ms=config.idle_timeout_ms,
            max_future_skew_ms=config.max_future_skew_ms,
        )
        self._scopes: OpenWindows[ScopeTuple] = OpenWindows(self.spec)
        self._proxies: OpenWindows[ProxyTuple] = OpenWindows(
            self.proxy_spec, config.max_proxies_per_window
        )
        self._late: LateBuffer[LateEvent] = LateBuffer(config.max_late_events)
        self._bounds = RecordTimeBounds(config.max_clock_skew_ms, config.max_event_age_ms)
        self._check_times = config.max_clock_skew_ms is not None or (
            config.max_event_age_ms is not None
        )
        self._refused: LateBuffer[OutOfRange] = LateBuffer(config.max_late_events)
        self._skewed_by_host = HostCounts()
        self._refused_events = 0
        # Deltas of accepted events not yet merged into the open windows.
        self._pending: PendingDeltas = {}
        self._deferred = DeferredRows(self._window_ms)  # columnar rows, counted at the next fold
        self._pending_events = 0
        # Folded deltas not yet handed over by flush().
        self._unflushed_scopes: dict[tuple[int, str, str], Accumulator] = {}
        self._unflushed_proxies: dict[tuple[int, str, str], dict[str, Accumulator]] = {}
        self._ranges: dict[tuple[str, int], list[int]] = {}
        self._events_accepted = 0
        self._late_events = 0
        self._proxy_overflow = 0

    @classmethod
    def from_settings(cls, settings: Any) -> WindowAggregator:
        """Build from a service settings object (see :meth:`AggregatorConfig.from_settings`)."""
        return cls(AggregatorConfig.from_settings(settings))

    # -- input -------------------------------------------------------------------------------

    def add(
        self,
        events: Sequence[WireEvent],
        *,
        source: str,
        partition: int,
        offset: int,
        now_ms: int,
        record_ms: int | None = None,
    ) -> None:
        """Aggregate one decoded record (an envelope's events or one bare event).

        ``offset`` is the record's position in ``source``/``partition`` (flushes report the
        ranges they cover); ``now_ms`` is the wall clock of its arrival, for the clock skew guard.
        ``record_ms`` is the record's time (:mod:`stream_app.core.record_time`): events too far
        from it are refused (see :meth:`drain_out_of_range`), and the record moves the watermark
        no further than it. Without it, ``now_ms`` bounds the events and nothing caps the
        watermark but the clock skew guard.

        The idle rule is not applied here but in :meth:`close_due_windows` (and
        :meth:`advance_idle`): between two of those calls the watermark moves by event time only,
        so what a flush holds depends only on the watermark state at its start and its records
        (and on ``now_ms`` only for events more than ``max_future_skew_ms`` ahead of it). A worker
        can rebuild a flush from its records after a crash and get the same rows.
        """
        self._cover(source, partition, offset)
        if not events:
            return
        newest_ms = max(map(_ts, events))
        if self._check_times:
            reference_ms = now_ms if record_ms is None else record_ms
            events, refused = self._bounds.split(events, reference_ms, newest_ms)
            if refused:
                self._on_refused(refused, source, partition, offset, reference_ms)
                if not events:
                    return
                newest_ms = max(map(_ts, events))
        if self._deferred.rows:
            self._deferred.fold_into(self._pending)  # keep the order of additions
        watermark = self._watermark.value
        late = accumulate_record(events, self._pending, self._window_ms, watermark)
        if late and watermark is not None:
            for window_start, ev in late:
                self._on_late(ev, window_start, watermark, source, partition, offset)
        accepted = len(events) - len(late)
        self._events_accepted += accepted
        self._pending_events += accepted
        if record_ms is not None and newest_ms > record_ms:
            newest_ms = record_ms
        self._watermark.observe(newest_ms, now_ms)

    def add_columns(
        self,
        batch: ColumnBatch,
        *,
        source: str,
        partition: int,
        offset: int,
        now_ms: int,
        record_ms: int | None = None,
    ) -> None:
        """:meth:`add` for a columnar record (schema v2): the same judgement of every event and
        the same aggregates, counted with array operations (:mod:`stream_app.core.columns`)."""
        self._cover(source, partition, offset)
        reference_ms = now_ms if record_ms is None else record_ms
        low_ms, high_ms = self._bounds.limits(reference_ms)
        watermark = self._watermark.value
        rows, starts, late, refused = split_rows(
            batch, window_ms=self._window_ms, watermark_ms=watermark, low_ms=low_ms, high_ms=high_ms
        )
        if refused:
            events = [(batch.event(i), kind) for i, kind in refused]
            self._on_refused(events, source, partition, offset, reference_ms)
        if not len(rows) and not len(late):
            return
        newest_ms = int(batch.ts_ms[np.concatenate([rows, late])].max())
        current = 0 if watermark is None else watermark - watermark % self._window_ms
        self._deferred.append(batch, rows, starts, late, current)
        if watermark is not None:
            window_ms = self._window_ms
            for i, ts in zip(late.tolist(), batch.ts_ms[late].tolist(), strict=True):
                self._late_events += 1
                start = ts - ts % window_ms
                self._late.offer(
                    LateEvent(batch.event(i), source, partition, offset, start, watermark)
                )
        self._events_accepted += len(rows)
        self._pending_events += len(rows)
        if self._deferred.rows > MAX_DEFERRED_ROWS:
            self._deferred.fold_into(self._pending)
        if record_ms is not None and newest_ms > record_ms:
            newest_ms = record_ms
        self._watermark.observe(newest_ms, now_ms)

    def _cover(self, source: str, partition: int, offset: int) -> None:
        """Widen the offset range the next flush reports for ``source``/``partition``."""
        span = self._ranges.get((source, partition))
        if span is None:
            self._ranges[(source, partition)] = [offset, offset]
        elif offset < span[0]:
            span[0] = offset
        elif offset > span[1]:
            span[1] = offset

    def _on_refused(
        self,
        refused: list[tuple[WireEvent, OutOfRangeKind]],
        source: str,
        partition: int,
        offset: int,
        record_ms: int,
    ) -> None:
        """Keep events refused for their time for the dead letters; count clock skew per host."""
        self._refused_events += len(refused)
        for ev, kind in refused:
            if kind == "clock_skew":
                self._skewed_by_host.add(ev.source_host)
            self._refused.offer(OutOfRange(ev, source, partition, offset, record_ms, kind))

    def _on_late(
        self,
        ev: WireEvent,
        window_start_ms: int,
        watermark_ms: int,
        source: str,
        partition: int,
        offset: int,
    ) -> None:
        """Count a late event on its scope's window that holds the watermark; keep it aside."""
        self._late_events += 1
        current = watermark_ms - watermark_ms % self._window_ms
        by_proxy = self._pending.get((current, ev.pool, ev.region))
        if by_proxy is None:
            by_proxy = self._pending[(current, ev.pool, ev.region)] = {}
        carrier = by_proxy.get(None)
        if carrier is None:
            carrier = by_proxy[None] = new_delta()
        carrier.late_events += 1
        self._late.offer(
            LateEvent(
                event=ev,
                source=source,
                partition=partition,
                offset=offset,
                window_start_ms=window_start_ms,
                watermark_ms=watermark_ms,
            )
        )

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

    def drain_late(self) -> list[LateEvent]:
        """Hand over the late events kept since the last drain (bounded; see ``stats``)."""
        return self._late.drain()

    def drain_out_of_range(self) -> list[OutOfRange]:
        """Hand over the events refused for their time since the last drain (bounded)."""
        return self._refused.drain()

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
