"""Partition hand-over of the stream worker: rebalances and shutdown (a mixin of
:class:`~stream_app.worker.runtime.StreamWorker`).

- :meth:`PartitionHandover.on_revoked` / :meth:`~PartitionHandover.shutdown`: store and commit
  everything held (within ``revoke_timeout_s``; what does not make it is read again by the next
  owner), drop the partitions' state, then tell the observers (awaited, so what they save is in
  place before another worker takes the partitions);
- :meth:`PartitionHandover.on_rebalance_complete`: take the new assignment over
  (:mod:`stream_app.worker.takeover`, retried while Kafka or storage is unavailable) before Faust
  resumes fetching, then tell the observers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from stream_app.core.config import AggregatorConfig
from stream_app.storage.errors import StorageError
from stream_app.worker.committer import Committer
from stream_app.worker.cycle import Backoff, Cycle
from stream_app.worker.cycle_store import CycleStore
from stream_app.worker.errors import PartitionsLost, WorkerError, WorkerFatal
from stream_app.worker.idle import IdleClock
from stream_app.worker.kafka_consumer import ConsumerControl
from stream_app.worker.observers import PartitionObservers
from stream_app.worker.partitions import Partition, PartitionState
from stream_app.worker.publisher import PUBLISH_TIMEOUT_S, TopicPublisher
from stream_app.worker.rebuild import FlushRebuilder
from stream_app.worker.settings import WorkerSettings
from stream_app.worker.stats import WorkerStats
from stream_app.worker.takeover import StoredState, take_over

__all__ = ["PartitionHandover"]

logger = logging.getLogger(__name__)


class PartitionHandover:
    """Taking partitions over and giving them up; the state is the worker's own."""

    settings: WorkerSettings
    source: str
    config: AggregatorConfig
    rebuilder: FlushRebuilder
    committer: Committer
    observers: PartitionObservers
    stats: WorkerStats
    lag: dict[Partition, int]
    _partitions: dict[Partition, PartitionState]
    _record_times: list[tuple[int, int]]
    _cycle: Cycle | None
    _lock: asyncio.Lock
    _takeover: asyncio.Task[None] | None
    _stopping: bool
    _backoff: Backoff
    _idle: IdleClock
    _consumer: ConsumerControl
    _storage: StoredState
    _dead_letters: TopicPublisher
    _windows: TopicPublisher | None
    _store: CycleStore
    _clock: Callable[[], int]

    def _take(self, now_ms: int, clocks: dict[Partition, int]) -> Cycle:
        raise NotImplementedError

    async def _complete(self, cycle: Cycle) -> None:
        raise NotImplementedError

    # -- rebalance and shutdown ---------------------------------------------------------------

    async def on_revoked(self) -> None:
        """Store and commit what is held (bounded), then drop every partition's state."""
        await self._cancel_takeover()
        async with self._lock:
            await self._give_up(self.settings.revoke_timeout_s)

    async def on_rebalance_complete(self, assigned: Iterable[Partition]) -> None:
        """Take over ``assigned`` (retrying while Kafka or storage is unavailable); returns
        when the partitions are ready or a newer rebalance cancelled the takeover."""
        await self._cancel_takeover()
        if self._stopping:
            return
        self._takeover = asyncio.create_task(self._take_over_until_done(set(assigned)))
        with contextlib.suppress(asyncio.CancelledError):
            await self._takeover

    async def shutdown(self) -> None:
        """Final store and commit; afterwards every record is left for the next owner."""
        self._stopping = True
        await self._cancel_takeover()
        async with self._lock:
            await self._give_up(self.settings.revoke_timeout_s)

    async def _cancel_takeover(self) -> None:
        task, self._takeover = self._takeover, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _take_over_until_done(self, assigned: set[Partition]) -> None:
        backoff = Backoff(self._backoff.initial_s, self._backoff.max_s)
        while True:
            try:
                async with self._lock:
                    await self._release(set(self._partitions) - assigned)
                    new = assigned - set(self._partitions)
                    result = await take_over(
                        new,
                        source=self.source,
                        config=self.config,
                        consumer=self._consumer,
                        committer=self.committer,
                        storage=self._storage,
                        rebuilder=self.rebuilder,
                        now_ms=self._clock(),
                        restore_horizon_ms=self.settings.restore_horizon_s * 1000,
                        dedup_batches=self.settings.dedup_batches,
                    )
                    await self._dead_letters.deliver(PUBLISH_TIMEOUT_S)
                    self._partitions.update(result.states)
                    await self.observers.assigned(set(result.states))
                    self.stats.takeovers += 1
                    self.stats.restored_windows += result.restored_windows
                    self.stats.rebuilt_flushes += result.rebuilt_flushes
                logger.info(
                    "took over partitions %s of %s (%d open windows restored, %d interrupted "
                    "flushes rewritten)",
                    sorted(new),
                    self.source,
                    result.restored_windows,
                    result.rebuilt_flushes,
                )
                return
            except PartitionsLost as exc:
                logger.info("takeover interrupted by a rebalance: %s", exc)
                return
            except (StorageError, WorkerError) as exc:
                if isinstance(exc, WorkerFatal) or not exc.retriable:
                    raise
                delay_s = backoff.next()
                logger.warning(
                    "cannot take partitions over yet (retry in %.1f s): %s", delay_s, exc
                )
                await asyncio.sleep(delay_s)

    async def _give_up(self, timeout_s: float) -> None:
        if self._partitions or self._cycle is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    if self._cycle is None:
                        now_ms = self._clock()
                        clocks = {
                            p: self._idle.clock(state, now_ms)
                            for p, state in self._partitions.items()
                        }
                        self._cycle = self._take(now_ms, clocks)
                    await self._complete(self._cycle)
                self._cycle = None
            except (TimeoutError, StorageError, WorkerError) as exc:
                self.stats.abandoned_flushes += 1
                logger.warning(
                    "giving partitions %s up without storing their last records (the next owner "
                    "reads them again): %r",
                    sorted(self._partitions),
                    exc,
                )
                await self._store.write_finished()  # never let go while a write may land
        self._cycle = None
        self._dead_letters.discard()
        if self._windows is not None:
            self._windows.discard()
        await self._release(set(self._partitions))
        self.stats.paused = False
        self._backoff.reset()

    async def _release(self, partitions: set[Partition]) -> None:
        """Partitions given up in order: their state is stored, observers may save theirs."""
        self._drop(partitions)
        if partitions:
            await self.observers.revoked(partitions)

    async def _lose(self, partitions: set[Partition]) -> None:
        """Partitions the group moved on without us: another worker may own them already."""
        self._drop(partitions)
        if partitions:
            await self.observers.lost(partitions)

    def _drop(self, partitions: set[Partition]) -> None:
        for p in partitions:
            self._partitions.pop(p, None)
            self.lag.pop(p, None)
        if not self._partitions:
            self._record_times = []
