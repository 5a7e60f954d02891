"""Rebuilding a flush that may have been stored only in part, and writing it again.

A flush is one insert that ClickHouse's materialized views fan out to several tables, which do
not commit together: a worker killed during the insert can leave the flush in some tables and
not in others. Before writing, the worker commits the flush's intent (its exact offset ranges
and each range's starting watermark) with the partitions' offsets
(:mod:`stream_app.worker.partitions`). Whoever takes such a partition over calls
:meth:`FlushRebuilder.rebuild`: the same records are read again and aggregated from the same
watermarks, and the flush is written with the same ranges, hence the same deduplication token:
tables that already hold it ignore the insert, the others receive it.

The idle rule (wall clock) is off while rebuilding, so which events count as late depends on
event times only. The original run may have judged an event late by the idle rule; then only
the tables that had missed the original insert see that one event counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from schemas.wire import WireEvent
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.core.contributions import Flush
from stream_app.core.watermark import WatermarkState
from stream_app.storage.sink import FlushSink, RawEventSink
from stream_app.worker.cycle import range_of
from stream_app.worker.dead_letter_queue import WorkerDeadLetters
from stream_app.worker.ingest import RecentBatches, ingest_record
from stream_app.worker.kafka_ranges import RangeRecord
from stream_app.worker.partitions import OffsetRange, Partition, RangeIntent

__all__ = ["FlushRebuilder", "RangeSource"]

logger = logging.getLogger(__name__)

_NEVER_IDLE_MS = 10**12


class RangeSource(Protocol):
    """Reads exact offset ranges of the requests topic (:class:`RangeReader`)."""

    async def read(self, ranges: Sequence[OffsetRange]) -> list[RangeRecord]: ...


class FlushRebuilder:
    """Rebuilds and rewrites flushes from their intents (see the module docstring)."""

    def __init__(
        self,
        *,
        source: str,
        config: AggregatorConfig,
        reader: RangeSource,
        sink: FlushSink,
        dead_letters: WorkerDeadLetters,
        clock: Callable[[], int],
        dedup_batches: int = 0,
        raw_events: RawEventSink | None = None,
    ) -> None:
        self._raw_sink = raw_events
        self._source = source
        self._config = config.model_copy(update={"idle_timeout_ms": _NEVER_IDLE_MS})
        self._reader = reader
        self._sink = sink
        self._dead_letters = dead_letters
        self._clock = clock
        self._dedup_batches = dedup_batches
        self.rebuilt = 0

    def build(
        self,
        intent: Sequence[RangeIntent],
        records: Sequence[RangeRecord],
        parts: list[tuple[RangeIntent, Flush]] | None = None,
        raw: list[WireEvent] | None = None,
    ) -> tuple[Flush, dict[Partition, WatermarkState]]:
        """The flush of ``intent`` from its ``records`` and each partition's watermark after;
        ``parts`` receives each partition's own flush with its range, ``raw`` the events."""
        by_partition: dict[Partition, list[RangeRecord]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        merged = Flush()
        watermarks: dict[Partition, WatermarkState] = {}
        now_ms = self._clock()
        for r in intent:
            recent = RecentBatches(self._dedup_batches)
            aggregator = WindowAggregator(self._config)
            aggregator.restore_watermark(r.watermark, now_ms)
            for record in by_partition.get(r.partition, ()):
                got = ingest_record(
                    aggregator,
                    source=self._source,
                    partition=r.partition,
                    offset=record.offset,
                    value=record.value,
                    now_ms=now_ms,
                    record_ms=record.timestamp_ms,
                    recent=recent,
                )
                if raw is not None:
                    raw.extend(got.raw_events())
                if got.reason is not None:
                    self._dead_letters.record(
                        "empty" if record.value is None else "decode",
                        partition=r.partition,
                        offset=record.offset,
                        key=record.key,
                        payload=record.value or b"",
                        reason=got.reason,
                        now_ms=now_ms,
                    )
            flush = aggregator.flush()
            for late in aggregator.drain_late():
                self._dead_letters.late(late, now_ms)
            for refused in aggregator.drain_out_of_range():
                self._dead_letters.out_of_range(refused, now_ms)
            merged.scopes.extend(flush.scopes)
            merged.proxies.extend(flush.proxies)
            merged.ranges.extend(flush.ranges)
            if parts is not None:
                parts.append((r, flush))
            watermarks[r.partition] = aggregator.watermark_state()
        return merged, watermarks

    async def rebuild(
        self, intent: Sequence[RangeIntent]
    ) -> dict[Partition, WatermarkState] | None:
        """Read, aggregate and write the flush of ``intent``; returns the watermark of each of
        its partitions after it, or None when the records do not give the same ranges (the
        flush is then not written: a different token could count it twice)."""
        records = await self._reader.read([r.offsets for r in intent])
        parts: list[tuple[RangeIntent, Flush]] = []
        raw: list[WireEvent] | None = [] if self._raw_sink is not None else None
        flush, watermarks = self.build(intent, records, parts, raw)
        wanted = {r.offsets for r in intent}
        got = {
            OffsetRange(Partition(r.partition), r.first_offset, r.last_offset) for r in flush.ranges
        }
        if wanted != got:
            logger.error(
                "cannot rebuild the flush of %s ranges %s: the log gave %s; not written",
                self._source,
                _listed(wanted),
                _listed(got),
            )
            return None
        if raw and self._raw_sink is not None:  # as the cycle did: before the flush, its token
            await asyncio.to_thread(self._raw_sink.write_raw, raw, flush.dedup_token())
        rejected = await asyncio.to_thread(self._sink.write, flush)
        now_ms = self._clock()
        for row in rejected:
            self._dead_letters.rejected(range_of(parts, row.contribution), row, now_ms)
        self.rebuilt += 1
        logger.warning(
            "rewrote the flush of %s ranges %s after an interrupted write (deduplicated where "
            "it had been stored)",
            self._source,
            _listed(wanted),
        )
        return watermarks


def _listed(ranges: set[OffsetRange]) -> list[str]:
    return [f"{r.partition}:{r.first}-{r.last}" for r in sorted(ranges, key=_range_key)]


def _range_key(r: OffsetRange) -> tuple[int, int]:
    return (r.partition, r.first)
