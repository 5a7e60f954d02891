"""Partition hand-over: taking an assignment over, giving it up, losing it.

:class:`Handover` owns the worker's current :class:`~stream_app.worker.assignment.Assignment`:
it builds one when partitions are taken over (:mod:`stream_app.worker.takeover`, retried while
Kafka or storage is unavailable, before Faust resumes fetching) and discards it when they are
given up (after storing and committing what is held, within ``revoke_timeout_s``) or lost
(the group moved on: nothing more is written). Observers hear each change, awaited, so what
they save is in place before another worker takes the partitions. The cycle and its one
commit point: docs/architecture.md, "The flush cycle".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Set

from stream_app.core.config import AggregatorConfig
from stream_app.storage.errors import StorageError
from stream_app.worker.assignment import Assignment
from stream_app.worker.committer import Committer
from stream_app.worker.cycle import Backoff
from stream_app.worker.cycle_store import CycleStore
from stream_app.worker.dead_letter_queue import WorkerDeadLetters
from stream_app.worker.errors import PartitionsLost, WorkerError
from stream_app.worker.idle import IdleClock
from stream_app.worker.kafka_consumer import ConsumerControl
from stream_app.worker.observers import PartitionObservers
from stream_app.worker.partitions import Partition
from stream_app.worker.publisher import TopicPublisher
from stream_app.worker.rebuild import FlushRebuilder
from stream_app.worker.settings import WorkerSettings
from stream_app.worker.stats import WorkerStats
from stream_app.worker.takeover import StoredState, take_over

__all__ = ["Handover"]

logger = logging.getLogger(__name__)


class Handover:
    """Builds, gives up and loses the worker's assignment (see the module docstring)."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        config: AggregatorConfig,
        consumer: ConsumerControl,
        committer: Committer,
        storage: StoredState,
        rebuilder: FlushRebuilder,
        store: CycleStore,
        idle: IdleClock,
        observers: PartitionObservers,
        dead_letters: WorkerDeadLetters,
        windows: TopicPublisher | None,
        stats: WorkerStats,
        lock: asyncio.Lock,
        backoff: Backoff,
        clock: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._source = settings.requests_topic
        self._config = config
        self._consumer = consumer
        self._committer = committer
        self._storage = storage
        self._rebuilder = rebuilder
        self._store = store
        self._idle = idle
        self._observers = observers
        self._dead_letters = dead_letters
        self._windows = windows
        self._stats = stats
        self._lock = lock
        self._backoff = backoff
        self._clock = clock
        self.assignment = Assignment()
        """The current assignment (empty while nothing is held)."""
        self._takeover: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def taking_over(self) -> bool:
        """True while a takeover runs (or waits for storage/Kafka to answer)."""
        return self._takeover is not None and not self._takeover.done()

    async def on_revoked(self) -> None:
        """Store and commit what is held (bounded), then discard the assignment."""
        await self._cancel_takeover()
        async with self._lock:
            await self._give_up(self._settings.revoke_timeout_s)

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
            await self._give_up(self._settings.revoke_timeout_s)

    async def lose(self) -> None:
        """The group moved on without this worker: discard the assignment unsaved (the caller
        holds the lock)."""
        lost, self.assignment = set(self.assignment.partitions), Assignment()
        if lost:
            await self._observers.lost(lost)

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
                    current = self.assignment
                    await self._release(current, set(current.partitions) - assigned)
                    new = assigned - set(current.partitions)
                    result = await take_over(
                        new,
                        source=self._source,
                        config=self._config,
                        consumer=self._consumer,
                        committer=self._committer,
                        storage=self._storage,
                        rebuilder=self._rebuilder,
                        now_ms=self._clock(),
                        restore_horizon_ms=self._settings.restore_horizon_s * 1000,
                        dedup_batches=self._settings.dedup_batches,
                    )
                    await self._dead_letters.deliver()
                    self.assignment = current.extended(result.states)
                    await self._observers.assigned(set(result.states))
                    self._stats.takeovers += 1
                    self._stats.restored_windows += result.restored_windows
                    self._stats.rebuilt_flushes += result.rebuilt_flushes
                logger.info(
                    "took over partitions %s of %s (%d open windows restored, %d interrupted "
                    "flushes rewritten)",
                    sorted(new),
                    self._source,
                    result.restored_windows,
                    result.rebuilt_flushes,
                )
                return
            except PartitionsLost as exc:
                logger.info("takeover interrupted by a rebalance: %s", exc)
                return
            except (StorageError, WorkerError) as exc:
                if not exc.retriable:
                    raise
                delay_s = backoff.next()
                logger.warning(
                    "cannot take partitions over yet (retry in %.1f s): %s", delay_s, exc
                )
                await asyncio.sleep(delay_s)

    async def _give_up(self, timeout_s: float) -> None:
        held = self.assignment
        if not held.empty:
            try:
                async with asyncio.timeout(timeout_s):
                    if held.cycle is None:
                        now_ms = self._clock()
                        clocks = {
                            p: self._idle.clock(state, now_ms)
                            for p, state in held.partitions.items()
                        }
                        held.cycle = self._store.take(held, now_ms, clocks)
                    await self._store.complete(held.cycle, held.partitions)
            except (TimeoutError, StorageError, WorkerError) as exc:
                self._stats.abandoned_flushes += 1
                logger.warning(
                    "giving partitions %s up without storing their last records (the next owner "
                    "reads them again): %r",
                    sorted(held.partitions),
                    exc,
                )
                await self._store.write_finished()  # never let go while a write may land
        self._dead_letters.discard()
        if self._windows is not None:
            self._windows.discard()
        given_up, self.assignment = set(held.partitions), Assignment()
        if given_up:
            await self._observers.revoked(given_up)
        self._stats.paused = False
        self._backoff.reset()

    async def _release(self, held: Assignment, partitions: Set[Partition]) -> None:
        """Partitions given up while the others stay held (their state is stored)."""
        held.drop(partitions)
        if partitions:
            await self._observers.revoked(partitions)
