"""Taking partitions over after a (re)assignment: where to read from, what was still open
(the hand-over in docs/architecture.md, "The flush cycle"; commits go through the
:class:`~stream_app.worker.committer.Committer`).

For the newly assigned partitions, in this order:

1. **Interrupted writes**: a committed offset whose metadata carries a flush intent means the
   previous owner stopped while writing that flush. It is rebuilt from the same records and
   written again with the same token (:mod:`stream_app.worker.rebuild`), then the partition is
   committed past it.
2. **Read position**: ``max(committed offset, last offset stored from it + 1)``: a flush that
   was written but whose offsets were not committed is never read again, so nothing is counted
   twice even when batch boundaries would differ. When storage is ahead of Kafka that position
   is committed at once, so the seek Faust performs after the rebalance lands there.
3. **Watermark**: continued from the metadata of the committed offset.
4. **Open windows**: every stored window of the partition's pools that had not been closed and
   published yet (window end after the committed watermark; after an interrupted write, after
   the watermark that flush started from, since its cycle published nothing) is put back into
   the partition's aggregator, so aggregates closed after a restart or a handover are
   complete. Pools map to partitions with Kafka's default partitioner (records are keyed by
   pool). Without a saved watermark, windows ending in the last ``restore_horizon_ms`` are
   restored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from stream_app.core.aggregator import WindowAggregator
from stream_app.core.config import AggregatorConfig
from stream_app.core.watermark import WatermarkState
from stream_app.storage.results import RestoredWindow
from stream_app.worker.committer import Committer
from stream_app.worker.errors import RangeUnavailable
from stream_app.worker.ingest import RecentBatches
from stream_app.worker.kafka_consumer import ConsumerControl
from stream_app.worker.partitions import (
    NO_WATERMARK,
    CommitMetadata,
    CommitPoint,
    Partition,
    PartitionState,
    RangeIntent,
    partition_for_pool,
)
from stream_app.worker.rebuild import FlushRebuilder

__all__ = ["StoredState", "Takeover", "take_over"]

logger = logging.getLogger(__name__)


class StoredState(Protocol):
    """What storage tells a worker taking partitions over (:class:`StorageQueries`)."""

    def last_offsets(self, source: str) -> Mapping[int, int]: ...

    def restore_open_windows(self, since_ms: int) -> list[RestoredWindow]: ...


@dataclass
class Takeover:
    """The outcome of :func:`take_over`: ready partition states and what was done for them."""

    states: dict[Partition, PartitionState] = field(default_factory=dict)
    committed_ahead: dict[Partition, CommitPoint] = field(default_factory=dict)
    rebuilt_flushes: int = 0
    restored_windows: int = 0
    skipped_windows: int = 0


async def take_over(
    partitions: Iterable[Partition],
    *,
    source: str,
    config: AggregatorConfig,
    consumer: ConsumerControl,
    committer: Committer,
    storage: StoredState,
    rebuilder: FlushRebuilder,
    now_ms: int,
    restore_horizon_ms: int,
    dedup_batches: int = 0,
) -> Takeover:
    """Build the states of ``partitions`` (see the module docstring).

    Raises BrokerUnavailable / PartitionsLost (Kafka) or storage errors: retry the whole
    takeover later (every step is idempotent).
    """
    wanted = sorted(set(partitions))
    result = Takeover()
    if not wanted:
        return result
    committed: dict[Partition, CommitPoint] = {}
    for p, (offset, metadata) in (await consumer.committed(wanted)).items():
        committed[p] = CommitPoint(
            offset, CommitMetadata.decode(metadata) or CommitMetadata(NO_WATERMARK)
        )
    closed_before = await _finish_interrupted_writes(committed, committer, rebuilder, result)
    stored = await asyncio.to_thread(storage.last_offsets, source)
    for p in wanted:
        point = committed.get(p)
        aggregator = WindowAggregator(config)
        watermark = point.watermark if point is not None else NO_WATERMARK
        if watermark.watermark_ms is not None:
            aggregator.restore_watermark(watermark, now_ms)
        last_stored = stored.get(p)
        floor = max(
            point.offset if point is not None else 0,
            last_stored + 1 if last_stored is not None else 0,
        )
        if last_stored is not None and (point is None or floor > point.offset):
            point = CommitPoint(floor, CommitMetadata(watermark))
            result.committed_ahead[p] = point
        result.states[p] = PartitionState(
            p,
            aggregator,
            next_offset=floor,
            committed=point,
            flushed_watermark=watermark,
            recent=RecentBatches(dedup_batches) if dedup_batches else None,
        )
    if result.committed_ahead:
        await committer.settle(result.committed_ahead)
        logger.info(
            "storage is ahead of the committed offsets of %s: committed %s",
            source,
            {p: c.offset for p, c in result.committed_ahead.items()},
        )
    boundaries = {
        p: closed_before.get(p, state.flushed_watermark) for p, state in result.states.items()
    }
    await _restore_windows(
        result, boundaries, config, consumer, storage, now_ms, restore_horizon_ms
    )
    return result


async def _finish_interrupted_writes(
    committed: dict[Partition, CommitPoint],
    committer: Committer,
    rebuilder: FlushRebuilder,
    result: Takeover,
) -> dict[Partition, WatermarkState]:
    """Rebuild and rewrite every flush whose intent is on a committed offset; commit past it.

    Returns, per partition finished here, the watermark up to which windows had been closed
    and published: the intent's starting watermark (the interrupted cycle published nothing),
    so the windows it would have closed are restored and closed again by the new owner.
    """
    intents: dict[tuple[RangeIntent, ...], None] = {}
    for point in committed.values():
        if point.meta.intent:
            intents[point.meta.intent] = None
    closed_before: dict[Partition, WatermarkState] = {}
    for intent in intents:
        try:
            after = await rebuilder.rebuild(intent)
        except RangeUnavailable as exc:
            logger.error("flush of an interrupted write cannot be rebuilt: %s", exc)
            after = None
        result.rebuilt_flushes += after is not None
        ends: dict[Partition, CommitPoint] = {}
        for r in intent:
            current = committed.get(r.partition)
            if current is None or current.meta.intent != intent:
                continue  # another worker's partition (it rebuilds itself), or already past it
            watermark = after[r.partition] if after is not None else r.watermark
            ends[r.partition] = CommitPoint(r.last_offset + 1, CommitMetadata(watermark))
            closed_before[r.partition] = r.watermark
        await committer.settle(ends)
        committed.update(ends)
    return closed_before


def _boundary_ms(watermark: WatermarkState, now_ms: int, horizon_ms: int) -> int:
    if watermark.watermark_ms is not None:
        return watermark.watermark_ms
    return now_ms - horizon_ms


async def _restore_windows(
    result: Takeover,
    closed_before: dict[Partition, WatermarkState],
    config: AggregatorConfig,
    consumer: ConsumerControl,
    storage: StoredState,
    now_ms: int,
    horizon_ms: int,
) -> None:
    count = await consumer.partition_count()
    if count is None:
        logger.warning(
            "partition count unknown: no open windows restored for %s", sorted(result.states)
        )
        return
    boundaries = {p: _boundary_ms(closed_before[p], now_ms, horizon_ms) for p in result.states}
    longest_ms = max(config.window_s, config.proxy_window_s) * 1000
    since_ms = max(0, min(boundaries.values()) - longest_ms + 1)
    windows = await asyncio.to_thread(storage.restore_open_windows, since_ms)
    for window in windows:
        p = Partition(partition_for_pool(window.scope.pool, count))
        state = result.states.get(p)
        if state is None:
            continue
        if window.window_start_ms + window.window_s * 1000 <= boundaries[p]:
            continue  # closed before the partition changed hands
        try:
            state.aggregator.restore_open_window(
                window.scope, window.window_start_ms, window.window_s, window.acc
            )
        except ValueError as exc:
            result.skipped_windows += 1
            if result.skipped_windows == 1:
                logger.warning("stored window not restorable with this configuration: %s", exc)
            continue
        result.restored_windows += 1
