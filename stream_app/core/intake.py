"""The window aggregator's input side: judging each record's events and counting them.

:class:`RecordIntake` is the base of :class:`stream_app.core.aggregator.WindowAggregator`; it
holds the state every record touches and is not used on its own.

``add(events, source=, partition=, offset=, now_ms=)``
    One decoded record. Each event is judged against the watermark as it stood when the record
    arrived (:mod:`stream_app.core.watermark`; the idle rule moves it only in ``close_due``):
    an event whose pool x region window has already closed is *late* (see
    :mod:`stream_app.core.late`); every other event is counted at once into the pending delta
    of its ``(window, pool, region, proxy_id)`` (:func:`stream_app.core.ingest.accumulate_record`).
    Then the record moves the watermark.
``add_columns(batch, ...)``
    The same for a columnar record (schema v2): judged row by row with array operations, its
    rows counted at the next materialisation into exactly the deltas ``add`` would have built
    (:mod:`stream_app.core.columns`).

Events too far from their record's time are refused (:mod:`stream_app.core.record_time`) and
kept for the dead letters (``drain_out_of_range``). Each record widens the offset range the next
flush reports for its (source, partition).

Late events of a scope are reported as ``late_events`` on the aggregate of that scope's window
that held the watermark when they arrived: the oldest window still open, so the next one emitted
for the scope (unless an older one was due but not yet closed). They are counted into that
window's delta, so storage sees them too, and the choice depends only on the watermark and the
record (a rebuilt flush is the same). If the scope had no traffic in that window, its aggregate
has ``requests == 0`` and only ``late_events``. The late events themselves go to a bounded side
output (``drain_late``; ``late_dropped_overflow`` counts what did not fit).

Nothing here raises for valid decoded events.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

import numpy as np

from schemas.column_batch import ColumnBatch
from schemas.wire import WireEvent
from stream_app.core.accumulator import new_delta
from stream_app.core.columns import MAX_DEFERRED_ROWS, DeferredRows, split_rows
from stream_app.core.config import AggregatorConfig
from stream_app.core.ingest import PendingDeltas, accumulate_record
from stream_app.core.late import LateBuffer, LateEvent
from stream_app.core.record_time import (
    HostCounts,
    OutOfRange,
    OutOfRangeKind,
    RecordTimeBounds,
)
from stream_app.core.watermark import Watermark
from stream_app.core.windows import WindowSpec

__all__ = ["RecordIntake"]

_ts = attrgetter("ts_ms")


class RecordIntake:
    """Judge and count records into pending deltas (see the module docstring)."""

    def __init__(self, config: AggregatorConfig | None = None) -> None:
        self.config = config = config or AggregatorConfig()
        self.spec = WindowSpec(config.window_s, config.grace_ms)
        self._window_ms = self.spec.window_ms
        self._watermark = Watermark(
            grace_ms=config.grace_ms,
            idle_timeout_ms=config.idle_timeout_ms,
            max_future_skew_ms=config.max_future_skew_ms,
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
        # Offset range per (source, partition) the next flush reports.
        self._ranges: dict[tuple[str, int], list[int]] = {}
        self._events_accepted = 0
        self._late_events = 0

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

        The idle rule is not applied here but in ``close_due_windows`` (and ``advance_idle``):
        between two of those calls the watermark moves by event time only, so what a flush holds
        depends only on the watermark state at its start and its records (and on ``now_ms`` only
        for events more than ``max_future_skew_ms`` ahead of it). A worker can rebuild a flush
        from its records after a crash and get the same rows.
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

    def drain_late(self) -> list[LateEvent]:
        """Hand over the late events kept since the last drain (bounded; see ``stats``)."""
        return self._late.drain()

    def drain_out_of_range(self) -> list[OutOfRange]:
        """Hand over the events refused for their time since the last drain (bounded)."""
        return self._refused.drain()

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
