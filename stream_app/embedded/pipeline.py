"""The embedded pipeline: producer -> core -> storage in one asyncio process.

Records arrive through :class:`RecordHandoff` (the in-process transport's target), are decoded and
fed to the pure :class:`WindowAggregator`; every ``flush_interval_ms`` the partial sums are written
to the sink in one idempotent insert (retried with the same dedup token while the sink is down,
with no further records taken meanwhile: backpressure, not buffering), then windows due by the
watermark are closed and handed to the listeners (live summary, alert engine).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from producer import InProcessTransport
from schemas.aggregates import WindowAggregate
from schemas.errors import DecodeError
from schemas.wire import decode_record, encode_event
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.contributions import Flush
from stream_app.dead_letters import DeadLetters
from stream_app.embedded.handoff import DecodedRecord, RecordHandoff
from stream_app.settings import PipelineSettings
from stream_app.storage.errors import SinkUnavailable

logger = logging.getLogger(__name__)

WindowListener = Callable[[Sequence[WindowAggregate]], None]
Clock = Callable[[], int]

_TAKE_PER_TURN = 64
_BACKOFF_MAX_S = 5.0


class FlushSink(Protocol):
    """What the pipeline writes to (a :class:`stream_app.storage.sink.ClickHouseSink`)."""

    def write(self, flush: Flush) -> None:
        """Store one flush idempotently; raise SinkUnavailable when it may be retried."""


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
    ) -> None:
        self.settings = settings
        self._sink = sink
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
        """Decode one record and aggregate it; poison goes to the dead letters."""
        offset = self._next_offset
        self._next_offset += 1
        self.stats.records += 1
        try:
            events = decode_record(payload)
        except DecodeError as exc:
            self.stats.dead_letters += 1
            self._dead_letters.put(
                source=self.source, partition=0, offset=offset, payload=payload, reason=str(exc)
            )
            return
        self.stats.events += len(events)
        self.aggregator.add(events, source=self.source, partition=0, offset=offset, now_ms=now_ms)

    def process_decoded(self, record: DecodedRecord, now_ms: int) -> None:
        """Aggregate a record the HTTP ingest decoded and validated, under its own source and
        offset (its durable inbox learns from ``source_offsets`` what is stored)."""
        self.stats.records += 1
        self.stats.events += len(record.events)
        self.aggregator.add(
            record.events, source=record.source, partition=0, offset=record.offset, now_ms=now_ms
        )

    def handoff(self) -> RecordHandoff:
        """The queue feeding this pipeline (call from inside the running loop)."""
        return self._ensure_handoff()

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
        """Late events are counted in the aggregates and kept, with the reason, as dead letters."""
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

    async def _write(self, flush: Flush, stop: asyncio.Event | None) -> None:
        delay_s = 0.1
        while True:
            try:
                await asyncio.to_thread(self._sink.write, flush)
                self.stats.flushes += 1
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
