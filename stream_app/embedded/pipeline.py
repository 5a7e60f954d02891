"""The embedded pipeline: producer -> core -> storage in one asyncio process.

Records arrive through :class:`RecordHandoff` (the in-process transport's target), are decoded
(a v2 or v1 envelope, or one event: :func:`schemas.column_batch.decode_any`) and fed to the pure
:class:`WindowAggregator` (a v2 envelope as columns, with ``add_columns``, as the worker does);
every ``flush_interval_ms`` the partial sums are written to the sink in one idempotent insert
(retried with the same dedup token while the sink is down, with no further records taken
meanwhile: backpressure, not buffering), then windows due by the watermark are closed and handed
to the listeners (live summary, alert engine).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from producer import InProcessTransport
from schemas.aggregates import WindowAggregate
from schemas.column_batch import ColumnBatch, decode_any
from schemas.errors import DecodeError
from schemas.wire import WireEvent, encode_event
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.contributions import Flush
from stream_app.dead_letters import DeadLetters
from stream_app.embedded.handoff import DecodedRecord, RecordHandoff
from stream_app.settings import PipelineSettings
from stream_app.storage.errors import SinkUnavailable
from stream_app.storage.sink import FlushSink, RawEventSink, RejectedRow

logger = logging.getLogger(__name__)

WindowListener = Callable[[Sequence[WindowAggregate]], None]
Clock = Callable[[], int]

_TAKE_PER_TURN = 64
_BACKOFF_MAX_S = 5.0


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class PipelineStats:
    records: int = 0
    events: int = 0
    dead_letters: int = 0
    late_events: int = 0
    flushes: int = 0
    sink_retries: int = 0
    windows_closed: int = 0
    rejected_rows: int = 0
    out_of_range_events: int = 0
    consume_errors: int = 0


class EmbeddedPipeline:
    """One process, one partition: the in-process runtime of the stream app."""

    def __init__(
        self,
        settings: PipelineSettings,
        sink: FlushSink,
        dead_letters: DeadLetters,
        *,
        clock: Clock = wall_clock_ms,
        source: str | None = None,
        raw_events: RawEventSink | None = None,
    ) -> None:
        self.settings = settings
        self._sink = sink
        self._raw_sink = raw_events
        # Raw events of the records since the last flush (only while raw events are kept): written
        # before the flush, under its token, so a replayed flush rewrites them harmlessly.
        self._raw: list[WireEvent] = []
        self._dead_letters = dead_letters
        self._clock = clock
        # A fresh source name per run: offsets restart at 0, so tokens must not collide with
        # the ones a previous run of the same data directory wrote.
        self.source = source or f"embedded-{uuid.uuid4().hex[:12]}"
        self.aggregator = WindowAggregator.from_settings(settings)
        self.stats = PipelineStats()
        self._listeners: list[tuple[WindowListener, bool]] = []
        self._handoff: RecordHandoff | None = None
        self._next_offset = 0

    def add_listener(self, listener: WindowListener, *, per_proxy: bool = False) -> None:
        """Call ``listener`` with every batch of closed pool x region windows (``per_proxy``:
        followed by the closed per-proxy windows of the same batch, e.g. for proxy-level rules)."""
        self._listeners.append((listener, per_proxy))

    def transport(self) -> InProcessTransport:
        """The producer transport feeding this pipeline (call from inside the running loop)."""
        return InProcessTransport(self._ensure_handoff().deliver)

    def _ensure_handoff(self) -> RecordHandoff:
        if self._handoff is None:
            self._handoff = RecordHandoff(
                asyncio.get_running_loop(), max_records=self.settings.max_pending_records
            )
        return self._handoff

    def process_record(self, payload: bytes, now_ms: int) -> None:
        """Decode one record and aggregate it; poison goes to the dead letters.

        The record's time is ``now_ms``, its arrival (:mod:`stream_app.core.record_time`).
        Nothing raises: a record that makes any step fail is dead-lettered with the reason and
        counted in ``stats.consume_errors``.
        """
        offset = self._next_offset
        self._next_offset += 1
        self.stats.records += 1
        try:
            decoded = decode_any(payload)
        except DecodeError as exc:
            self._dead_letter(offset, payload, str(exc))
            return
        if isinstance(decoded, ColumnBatch):
            record = DecodedRecord([], self.source, offset, decoded)
        else:
            events = [decoded] if isinstance(decoded, WireEvent) else decoded.events
            record = DecodedRecord(events, self.source, offset)
        try:
            self._add(record, now_ms)
        except Exception as exc:
            self.stats.consume_errors += 1
            if self.stats.consume_errors == 1 or self.stats.consume_errors % 1000 == 0:
                logger.exception(
                    "record %d of %s could not be aggregated (%d so far): dead-lettered",
                    offset,
                    self.source,
                    self.stats.consume_errors,
                )
            self._dead_letter(offset, payload, f"internal: {type(exc).__name__}: {exc}")
            return
        self._added(record)

    def _add(self, record: DecodedRecord, now_ms: int) -> None:
        """Aggregate one decoded record: columns at once, or event by event."""
        if record.columns is not None:
            self.aggregator.add_columns(
                record.columns,
                source=record.source,
                partition=0,
                offset=record.offset,
                now_ms=now_ms,
                record_ms=now_ms,
            )
        else:
            self.aggregator.add(
                record.events,
                source=record.source,
                partition=0,
                offset=record.offset,
                now_ms=now_ms,
                record_ms=now_ms,
            )

    def _added(self, record: DecodedRecord) -> None:
        self.stats.events += record.count
        if self._raw_sink is not None:
            self._raw.extend(record.events if record.columns is None else record.columns.events())

    def process_decoded(self, record: DecodedRecord, now_ms: int) -> None:
        """Aggregate a record the HTTP ingest decoded and validated, under its own source and
        offset (its durable inbox learns from ``source_offsets`` what is stored)."""
        self.stats.records += 1
        try:
            self._add(record, now_ms)
        except Exception as exc:
            self.stats.consume_errors += 1
            logger.exception(
                "record %d of %s could not be aggregated", record.offset, record.source
            )
            events = record.events if record.columns is None else record.columns.events()
            self.stats.dead_letters += 1
            self._dead_letters.put(
                source=record.source,
                partition=0,
                offset=record.offset,
                payload=b"[" + b",".join(encode_event(e) for e in events) + b"]",
                reason=f"internal: {type(exc).__name__}: {exc}",
            )
            return
        self._added(record)

    def handoff(self) -> RecordHandoff:
        """The queue feeding this pipeline (call from inside the running loop)."""
        return self._ensure_handoff()

    def _dead_letter(self, offset: int, payload: bytes, reason: str) -> None:
        self.stats.dead_letters += 1
        self._dead_letters.put(
            source=self.source, partition=0, offset=offset, payload=payload, reason=reason
        )

    async def flush_and_close(self, stop: asyncio.Event | None = None) -> list[WindowAggregate]:
        """Write the pending partial sums (retrying while the sink is down), close due windows."""
        flush = self.aggregator.flush()
        if not flush.empty:
            await self._write(flush, stop)
        self._keep_late_events()
        windows = self.aggregator.close_due_windows(self._clock())
        closed = windows.scopes
        self.stats.windows_closed += len(closed)
        for listener, per_proxy in self._listeners:
            batch = [*closed, *windows.proxies] if per_proxy else closed
            if not batch:
                continue
            try:
                listener(batch)
            except Exception:
                logger.exception("window listener %r failed", listener)
        return closed

    def _keep_late_events(self) -> None:
        """Late events are counted in the aggregates and kept, with the reason, as dead letters;
        events refused for their time (clock skew) are only kept."""
        for refused in self.aggregator.drain_out_of_range():
            self.stats.out_of_range_events += 1
            self._dead_letters.put(
                source=refused.source,
                partition=refused.partition,
                offset=refused.offset,
                payload=encode_event(refused.event),
                reason=refused.reason,
            )
        for late in self.aggregator.drain_late():
            self.stats.late_events += 1
            self._dead_letters.put(
                source=late.source,
                partition=late.partition,
                offset=late.offset,
                payload=encode_event(late.event),
                reason=(
                    f"late: window starting {late.window_start_ms} had closed "
                    f"(watermark {late.watermark_ms})"
                ),
            )

    def _keep_rejected(self, flush: Flush, rejected: Sequence[RejectedRow]) -> None:
        """Rows storage refused for their data become dead letters (the rest was stored)."""
        first = min((r.first_offset for r in flush.ranges), default=0)
        last = max((r.last_offset for r in flush.ranges), default=0)
        for row in rejected:
            self.stats.dead_letters += 1
            self.stats.rejected_rows += 1
            self._dead_letters.put(
                source=self.source,
                partition=0,
                offset=first,
                payload=row.document(),
                reason=f"rejected by storage (a row made from records {first}-{last}): "
                f"{row.reason}",
            )

    def _write_once(self, flush: Flush, raw: Sequence[WireEvent]) -> Sequence[RejectedRow]:
        """Raw events first (same token family as the flush), then the flush: once the flush
        is stored its records are never replayed, so the raw events must already be."""
        if raw and self._raw_sink is not None:
            self._raw_sink.write_raw(raw, flush.dedup_token() if flush.ranges else None)
        return self._sink.write(flush)

    async def _write(self, flush: Flush, stop: asyncio.Event | None) -> None:
        raw, self._raw = self._raw, []
        delay_s = 0.1
        while True:
            try:
                rejected = await asyncio.to_thread(self._write_once, flush, raw)
                self.stats.flushes += 1
                self._keep_rejected(flush, rejected)
                return
            except SinkUnavailable as exc:
                self.stats.sink_retries += 1
                if self.stats.sink_retries == 1 or self.stats.sink_retries % 50 == 0:
                    logger.warning(
                        "sink unavailable (retry %d, next in %.1fs): %s",
                        self.stats.sink_retries,
                        delay_s,
                        exc,
                    )
                if stop is not None and stop.is_set() and delay_s >= _BACKOFF_MAX_S:
                    raise
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, _BACKOFF_MAX_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume the hand-off until ``stop`` is set, then drain it and flush one last time."""
        handoff = self._ensure_handoff()
        flush_every_s = self.settings.flush_interval_ms / 1000
        next_flush = time.monotonic() + flush_every_s
        while not stop.is_set():
            await handoff.wait(max(0.0, min(next_flush - time.monotonic(), 0.25)))
            self._drain(handoff, everything=False)
            await asyncio.sleep(0)  # let producers and other tasks of this loop run
            if time.monotonic() >= next_flush:
                await self.flush_and_close(stop)
                next_flush = time.monotonic() + flush_every_s
        handoff.close()
        self._drain(handoff, everything=True)
        await self.flush_and_close(stop)

    def _drain(self, handoff: RecordHandoff, *, everything: bool) -> None:
        """Aggregate one turn of queued records, or all of them."""
        while True:
            records = handoff.take(_TAKE_PER_TURN)
            if not records:
                return
            now_ms = self._clock()
            for record in records:
                if isinstance(record, DecodedRecord):
                    self.process_decoded(record, now_ms)
                else:
                    self.process_record(record, now_ms)
            handoff.done(len(records))
            if not everything:
                return
