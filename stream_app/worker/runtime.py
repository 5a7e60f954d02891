"""The stream worker: records in, idempotent flushes out, offsets committed after.

Independent of Faust (:mod:`stream_app.worker.faust_app` wires it to an app): it sees records
as (partition, offset, key, value, timestamp) and talks to Kafka through a
:class:`~stream_app.worker.kafka_consumer.ConsumerControl`. :class:`StreamWorker` composes the
pieces: the record path (:meth:`StreamWorker.process`), the cycle loop's one call
(:meth:`StreamWorker.run_cycle`: pause and back off while it fails, resume when it completes),
the cycle store (:mod:`.cycle_store`), the hand-over (:mod:`.handover`) and the one commit
point (:mod:`.committer`). What a cycle does, step by step: docs/architecture.md, "The flush
cycle".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from stream_app.core.config import AggregatorConfig
from stream_app.storage.errors import StorageError
from stream_app.storage.sink import FlushSink, RawEventSink
from stream_app.worker.assignment import Assignment
from stream_app.worker.committer import Committer
from stream_app.worker.cycle import Backoff
from stream_app.worker.cycle_store import (
    CycleStore,
    PartitionWindowListener,
    WindowListener,
)
from stream_app.worker.dead_letter_queue import DeadLetterKind, WorkerDeadLetters
from stream_app.worker.errors import (
    BrokerUnavailable,
    PartitionsLost,
    PublishUnavailable,
    WorkerError,
    WorkerFatal,
)
from stream_app.worker.handover import Handover
from stream_app.worker.idle import IdleClock
from stream_app.worker.ingest import ingest_record
from stream_app.worker.kafka_consumer import ConsumerControl
from stream_app.worker.kafka_ranges import RangeReader
from stream_app.worker.observers import PartitionObservers
from stream_app.worker.partitions import Partition, PartitionState
from stream_app.worker.publisher import TopicPublisher
from stream_app.worker.rebuild import FlushRebuilder, RangeSource
from stream_app.worker.settings import WorkerSettings
from stream_app.worker.stats import WorkerStats
from stream_app.worker.takeover import StoredState

__all__ = ["StreamWorker", "WindowListener", "wall_clock_ms"]

logger = logging.getLogger(__name__)

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class StreamWorker:
    """Windows per partition, flushes to storage, commits after (see the module docstring)."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        sink: FlushSink,
        storage: StoredState,
        consumer: ConsumerControl,
        dead_letters: TopicPublisher,
        windows: TopicPublisher | None,
        ranges: RangeSource | None = None,
        clock: Clock = wall_clock_ms,
        raw_events: RawEventSink | None = None,
    ) -> None:
        self.settings = settings
        self._keep_raw = raw_events is not None
        self.source = settings.requests_topic
        self.config = AggregatorConfig.from_settings(settings.pipeline)
        self._consumer = consumer
        self._clock = clock
        self.stats = WorkerStats()
        self.dead_letters = WorkerDeadLetters(
            source=self.source,
            publisher=dead_letters,
            stats=self.stats,
            max_payload_bytes=settings.dlq_max_payload_bytes,
        )
        """Every dead letter of this worker, counted by kind (record path, cycles, rebuilds)."""
        self.rebuilder = FlushRebuilder(
            source=self.source,
            config=self.config,
            reader=ranges
            or RangeReader(
                settings.bootstrap_servers,
                self.source,
                client_id=f"{settings.client_id}-rebuild",
                timeout_s=settings.broker_request_timeout_s,
            ),
            sink=sink,
            dead_letters=self.dead_letters,
            clock=clock,
            dedup_batches=settings.dedup_batches,
            raw_events=raw_events,
        )
        self.committer = Committer(consumer, self.stats)
        """The one place offsets are committed (cycles and takeovers)."""
        self.observers = PartitionObservers()
        """Told when partitions are taken over and given up (per-partition state beside ours)."""
        self.cycle_store = CycleStore(
            settings,
            sink=sink,
            committer=self.committer,
            dead_letters=self.dead_letters,
            windows=windows,
            stats=self.stats,
            clock=clock,
            raw_events=raw_events,
        )
        self._lock = asyncio.Lock()
        self._backoff = Backoff(
            settings.sink_backoff_initial_ms / 1000, settings.sink_backoff_max_ms / 1000
        )
        self._idle = IdleClock(
            consumer, idle_ms=self.config.idle_timeout_ms, stall_ms=settings.broker_stall_ms
        )
        self._handover = Handover(
            settings,
            config=self.config,
            consumer=consumer,
            committer=self.committer,
            storage=storage,
            rebuilder=self.rebuilder,
            store=self.cycle_store,
            idle=self._idle,
            observers=self.observers,
            dead_letters=self.dead_letters,
            windows=windows,
            stats=self.stats,
            lock=self._lock,
            backoff=self._backoff,
            clock=clock,
        )

    # -- configuration ------------------------------------------------------------------------

    def add_listener(self, listener: WindowListener, *, per_proxy: bool = False) -> None:
        """Call ``listener`` with each batch of closed pool x region windows (and per-proxy
        windows too when ``per_proxy``), after they are stored and before offsets are committed.
        Listener errors are logged, never raised."""
        self.cycle_store.add_listener(listener, per_proxy=per_proxy)

    def add_partition_listener(self, listener: PartitionWindowListener) -> None:
        """Like :meth:`add_listener`, one call per partition with the windows it closed."""
        self.cycle_store.add_partition_listener(listener)

    @property
    def partitions(self) -> list[Partition]:
        """The partitions this worker holds (taken over and not given up)."""
        return sorted(self._handover.assignment.partitions)

    def partition_state(self, partition: Partition) -> PartitionState | None:
        return self._handover.assignment.partitions.get(partition)

    @property
    def assignment(self) -> Assignment:
        """The current assignment (its partitions' states, the pending cycle)."""
        return self._handover.assignment

    @property
    def lag(self) -> dict[Partition, int]:
        """Records behind the end of the log per held partition, when last looked."""
        return self._handover.assignment.lag

    def catching_up(self, behind_ms: int) -> bool:
        """Whether a held partition has records waiting (at the last look) and its watermark is
        more than ``behind_ms`` behind the wall clock (or not yet set): a backlog drains."""
        held = self._handover.assignment
        if self.stats.paused or held.cycle is not None:
            return False
        oldest_ms = self._clock() - behind_ms
        for partition, state in held.partitions.items():
            if held.lag.get(partition, 0) > 0:
                watermark_ms = state.aggregator.watermark_ms
                if watermark_ms is None or watermark_ms < oldest_ms:
                    return True
        return False

    @property
    def taking_over(self) -> bool:
        """True while a takeover runs (or waits for storage/Kafka to answer)."""
        return self._handover.taking_over

    @property
    def retry_delay_s(self) -> float | None:
        """How long to wait before the next cycle when one is being retried, else None."""
        return self._backoff.current_s if self._handover.assignment.cycle is not None else None

    # -- hand-over ----------------------------------------------------------------------------

    async def on_revoked(self) -> None:
        """Store and commit what is held (bounded), then drop every partition's state."""
        await self._handover.on_revoked()

    async def on_rebalance_complete(self, assigned: Iterable[Partition]) -> None:
        """Take over ``assigned`` before Faust resumes fetching (see :mod:`.handover`)."""
        await self._handover.on_rebalance_complete(assigned)

    async def shutdown(self) -> None:
        """Final store and commit; afterwards every record is left for the next owner."""
        await self._handover.shutdown()

    # -- record path --------------------------------------------------------------------------

    def process(
        self,
        partition: Partition,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Aggregate one record of the requests topic (see the module docstring).

        ``timestamp_ms`` is the record's Kafka timestamp, its record time
        (:mod:`stream_app.core.record_time`). Never raises: a record that makes any step fail
        is dead-lettered with the reason and counted (``stats.consume_errors``).
        """
        held = self._handover.assignment
        state = held.partitions.get(partition)
        if state is None:
            self.stats.foreign_records += 1
            return
        if offset < state.next_offset:
            self.stats.skipped_records += 1
            return
        if offset > state.next_offset and state.next_offset:
            self.stats.offset_gaps += 1
        state.next_offset = offset + 1
        self.stats.records += 1
        wall_ms = self._clock()
        try:
            got = ingest_record(
                state.aggregator,
                source=self.source,
                partition=partition,
                offset=offset,
                value=value,
                now_ms=self._idle.clock(state, wall_ms),
                record_ms=timestamp_ms,
                recent=state.recent,
            )
        except Exception as exc:
            self.dead_letters.failed(
                exc, partition=partition, offset=offset, key=key, value=value, now_ms=wall_ms
            )
            return
        count = got.count
        if count:
            self.stats.events += count
            held.record_times.append((count, got.mean_ts_ms()))
            if self._keep_raw:
                state.raw.extend(got.raw_events())
        elif got.repeated:
            self.stats.repeated_batches += 1
        elif got.reason is not None:
            kind: DeadLetterKind = "empty" if value is None else "decode"
            self.dead_letters.record(
                kind,
                partition=partition,
                offset=offset,
                key=key,
                payload=value or b"",
                reason=got.reason,
                now_ms=wall_ms,
            )

    # -- cycles -------------------------------------------------------------------------------

    async def run_cycle(self) -> bool:
        """One flush cycle (or the retry of the pending one); True when it completed.

        Raises :class:`WorkerFatal` when storage rejects the flush for good.
        """
        async with self._lock:
            held = self._handover.assignment
            if held.empty:
                self.stats.last_cycle_wall_ms = self._clock()
                return True
            now_ms = self._clock()
            clocks = await self._watch_input(held, now_ms)
            if held.cycle is None:
                held.cycle = self.cycle_store.take(held, now_ms, clocks)
            try:
                await self.cycle_store.complete(held.cycle, held.partitions)
            except (StorageError, WorkerError) as exc:
                if not exc.retriable:  # SinkRejected, WorkerFatal: waiting cannot help
                    raise WorkerFatal(f"cannot store flush: {exc}") from exc
                await self._on_unavailable(held, exc)
                return False
            held.cycle = None
            await self._on_available(held)
            self.stats.cycles += 1
            self.stats.last_cycle_wall_ms = self._clock()
            return True

    async def _watch_input(self, held: Assignment, now_ms: int) -> dict[Partition, int]:
        """Lag per partition, and each partition's idle clock for closing windows; the idle rule
        is suspended where input is behind (a backlog is not idleness) or the worker is paused."""
        partitions = list(held.partitions)
        try:
            ends = await self._consumer.end_offsets(partitions)
            self.stats.broker_reachable = True
        except BrokerUnavailable:
            ends = {}
            self.stats.broker_reachable = False
        clocks: dict[Partition, int] = {}
        for p, state in held.partitions.items():
            end = ends.get(p)
            if end is not None:
                held.lag[p] = max(0, end - state.next_offset)
            if self.stats.paused or end is None or end > state.next_offset:
                state.aggregator.defer_idle(now_ms)
            clocks[p] = self._idle.clock(state, now_ms)
        if self.stats.paused:
            self._consumer.pause(partitions)  # a rebalance may have resumed them
        return clocks

    async def _on_unavailable(self, held: Assignment, exc: Exception) -> None:
        if isinstance(exc, PartitionsLost):
            # The group moved on without us: stop at once (every write needs a successful
            # intent commit, so nothing more is written); the rebalance that follows drops
            # and re-assigns, and whatever was not stored is read again.
            logger.warning(
                "the group rebalanced under this worker, dropping its partitions: %s", exc
            )
            await self._handover.lose()
            return
        if isinstance(exc, PublishUnavailable):
            self.stats.publish_failures += 1
        elif isinstance(exc, StorageError):
            self.stats.sink_failures += 1
        delay_s = self._backoff.next()
        if not self.stats.paused:
            self.stats.paused = True
            self.stats.pauses += 1
            self._consumer.pause(held.partitions)
            logger.warning("pausing consumption, the cycle is retried in %.1f s: %s", delay_s, exc)
        else:
            logger.info("cycle still failing, next try in %.1f s: %s", delay_s, exc)
        now_ms = self._clock()
        for state in held.partitions.values():
            state.aggregator.defer_idle(now_ms)

    async def _on_available(self, held: Assignment) -> None:
        self._backoff.reset()
        if self.stats.paused:
            # Records of paused partitions fetched meanwhile were dropped by the consumer:
            # read on from the first offset not aggregated yet.
            for p, state in held.partitions.items():
                await self._consumer.seek(p, state.next_offset)
            self.stats.paused = False
            self._consumer.resume(held.partitions)
            logger.warning("storage and Kafka available again: consumption resumed")
