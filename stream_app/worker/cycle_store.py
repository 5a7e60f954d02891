"""The steps of a flush cycle between taking the flushes and committing the offsets.

:class:`CycleStore` takes a cycle from the held partitions (:meth:`CycleStore.take`, no I/O)
and runs its steps from the cycle's step marker on (:meth:`CycleStore.complete`): write,
observe, publish, deliver, notify, commit (:class:`~stream_app.worker.cycle.Step`). Each step
is idempotent and resumable; failures propagate to the worker, which backs off and retries the
same cycle. The story: docs/architecture.md, "The flush cycle".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from schemas.aggregates import WindowAggregate
from stream_app.core.contributions import Flush
from stream_app.storage.sink import FlushSink, RawEventSink, RejectedRow
from stream_app.worker.assignment import Assignment
from stream_app.worker.committer import Committer
from stream_app.worker.cycle import Cycle, PartitionWindows, Step, take_cycle
from stream_app.worker.dead_letter_queue import WorkerDeadLetters
from stream_app.worker.partitions import Partition, PartitionState
from stream_app.worker.publisher import PUBLISH_TIMEOUT_S, TopicPublisher
from stream_app.worker.records import window_record
from stream_app.worker.settings import WorkerSettings
from stream_app.worker.stats import WorkerStats

__all__ = ["CycleStore", "PartitionWindowListener", "StepFn", "WindowListener"]

logger = logging.getLogger(__name__)

WindowListener = Callable[[Sequence[WindowAggregate]], None]
PartitionWindowListener = Callable[[int, PartitionWindows], None]
"""Called once per cycle for every held partition, with the windows it closed (maybe none)."""


StepFn = Callable[[Cycle, dict[Partition, PartitionState]], Awaitable[None]]


@dataclass
class _Listener:
    fn: WindowListener
    per_proxy: bool


class CycleStore:
    """Runs the steps of the module docstring for the worker's cycles."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        sink: FlushSink,
        committer: Committer,
        dead_letters: WorkerDeadLetters,
        windows: TopicPublisher | None,
        stats: WorkerStats,
        clock: Callable[[], int],
        raw_events: RawEventSink | None = None,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._raw_sink = raw_events
        self._committer = committer
        self._dead_letters = dead_letters
        self._windows = windows
        self._stats = stats
        self._clock = clock
        self._listeners: list[_Listener] = []
        self._partition_listeners: list[PartitionWindowListener] = []
        self._write: asyncio.Future[Sequence[RejectedRow]] | None = None
        self.steps: dict[Step, StepFn] = {
            Step.WRITE: self._write_units,
            Step.OBSERVE: self._observe,
            Step.PUBLISH: self._publish,
            Step.DELIVER: self._deliver,
            Step.NOTIFY: self._notify,
            Step.COMMIT: self._commit,
        }
        """The function of each step (tests wrap them to fail a cycle at a given step)."""

    def add_listener(self, listener: WindowListener, *, per_proxy: bool = False) -> None:
        self._listeners.append(_Listener(listener, per_proxy))

    def add_partition_listener(self, listener: PartitionWindowListener) -> None:
        self._partition_listeners.append(listener)

    def take(self, held: Assignment, now_ms: int, clocks: dict[Partition, int]) -> Cycle:
        """Close due windows and take every held partition's flush (no I/O)."""
        cycle = take_cycle(
            held.partitions.values(),
            clocks,
            held.take_record_times(),
            lambda late: self._dead_letters.late(late, now_ms),
            lambda refused: self._dead_letters.out_of_range(refused, now_ms),
        )
        self._stats.windows_closed += len(cycle.scopes)
        self._stats.proxy_windows_closed += len(cycle.proxies)
        return cycle

    async def complete(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        """Run the remaining steps of ``cycle`` for the partitions in ``held``, from
        ``cycle.step`` on; a step that raises leaves the marker on itself (the next call resumes
        there), a step that completes moves it on."""
        await self._dead_letters.deliver()  # records dead-lettered since: before any commit
        while cycle.step is not Step.DONE:
            await self.steps[cycle.step](cycle, held)
            cycle.step = Step(cycle.step + 1)

    async def _write_units(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        for unit in cycle.units[cycle.units_written :]:
            await self._committer.intent(unit.intent, held)
            if unit.raw and self._raw_sink is not None:
                # Before the flush, under its token: once the flush is stored its records are
                # never rebuilt, so their raw events must be stored already.
                token = unit.flush.dedup_token()
                await asyncio.to_thread(self._raw_sink.write_raw, unit.raw, token)
            rejected = await self._write_flush(unit.flush)
            now_ms = self._clock()
            for row in rejected:
                self._dead_letters.rejected(unit.range_of(row.contribution), row, now_ms)
            cycle.units_written += 1
            if rejected:  # before the offsets move past the records they were made from
                await self._dead_letters.deliver()

    async def _observe(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        now_ms = self._clock()
        for count, mean_ts in cycle.record_times:
            self._stats.stored_delay.observe(now_ms - mean_ts, count)
        for aggregate in cycle.scopes:
            self._stats.window_delay.observe(now_ms - aggregate.window_end_ms)

    async def _publish(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        if self._windows is not None:
            for aggregate in self._published(cycle):
                self._windows.add(*window_record(aggregate))

    async def _deliver(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        if self._windows is not None:
            await self._windows.deliver(PUBLISH_TIMEOUT_S)

    async def _notify(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        for listener in self._listeners:
            batch = cycle.scopes + cycle.proxies if listener.per_proxy else cycle.scopes
            if not batch:
                continue
            try:
                listener.fn(batch)
            except Exception:
                logger.exception("window listener %r failed", listener.fn)
        for partition, closed in sorted(cycle.closed.items()):
            for partition_listener in self._partition_listeners:
                try:
                    partition_listener(partition, closed)
                except Exception:
                    logger.exception(
                        "window listener %r failed (partition %d)", partition_listener, partition
                    )

    async def _commit(self, cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
        await self._committer.progress(cycle.commits, held)

    async def write_finished(self) -> None:
        """Wait until a write that is still running has ended (however it ends)."""
        if self._write is not None:
            with contextlib.suppress(Exception):
                await self._write

    def _published(self, cycle: Cycle) -> list[WindowAggregate]:
        if not self._settings.publish_windows:
            return []
        if self._settings.publish_proxy_windows:
            return cycle.scopes + cycle.proxies
        return cycle.scopes

    async def _write_flush(self, flush: Flush) -> Sequence[RejectedRow]:
        """Write in a thread; a write once started is always awaited to its end (a partition
        must not change hands while a write covering it may still land)."""
        write = asyncio.ensure_future(asyncio.to_thread(self._sink.write, flush))
        self._write = write
        try:
            rejected = await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await write
            raise
        finally:
            self._write = None
        self._stats.flushes += 1
        self._stats.flush_rows += len(flush.scopes) + len(flush.proxies) - len(rejected)
        self._stats.rejected_rows += len(rejected)
        self._stats.last_flush_wall_ms = self._clock()
        return rejected
