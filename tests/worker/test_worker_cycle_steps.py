"""The flush cycle's steps, without a broker (fakes for the consumer, storage and the topics):
a cycle failed at any step resumes at that step on its next run, repeats no earlier step (no
second write, publication or notification) and commits its progress exactly once; ``run_cycle``,
``on_revoked`` and the cycle store called directly. The same behaviour against the real broker
and ClickHouse: the outage, crash and rebalance tests of this directory."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from worker_kit import worker_settings

from schemas.aggregates import WindowAggregate
from schemas.events import Outcome
from schemas.wire import WireEvent, encode_event
from stream_app.core.contributions import Flush
from stream_app.storage.errors import SinkUnavailable
from stream_app.storage.results import RestoredWindow
from stream_app.storage.sink import RejectedRow
from stream_app.worker.cycle import Cycle, Step
from stream_app.worker.cycle_store import StepFn
from stream_app.worker.errors import BrokerUnavailable, PartitionsLost, PublishUnavailable
from stream_app.worker.kafka_ranges import RangeRecord
from stream_app.worker.partitions import CommitPoint, OffsetRange, Partition, PartitionState
from stream_app.worker.publisher import Headers, TopicPublisher
from stream_app.worker.runtime import StreamWorker

NOW_MS = 1_800_000_000_000  # a multiple of the 2 s window
P0, P1 = Partition(0), Partition(1)


class _Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class _Consumer:
    """Kafka as the worker sees it: commits recorded, failures queued."""

    clock: _Clock
    commits: list[dict[Partition, CommitPoint]] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)
    paused: int = 0

    async def committed(self, partitions: Iterable[Partition]) -> dict[Partition, tuple[int, str]]:
        return {}

    async def commit(self, points: Mapping[Partition, CommitPoint]) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.commits.append(dict(points))

    async def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return {p: 0 for p in partitions}

    def last_fetch_ms(self, partition: int) -> int | None:
        return self.clock()

    def pause(self, partitions: Iterable[int]) -> None:
        self.paused += 1

    def resume(self, partitions: Iterable[int]) -> None:
        pass

    async def seek(self, partition: int, offset: int) -> None:
        pass

    async def partition_count(self) -> int | None:
        return 2

    @property
    def intents(self) -> list[dict[Partition, CommitPoint]]:
        return [c for c in self.commits if any(p.meta.intent for p in c.values())]

    @property
    def progress(self) -> list[dict[Partition, CommitPoint]]:
        return [c for c in self.commits if not any(p.meta.intent for p in c.values())]


@dataclass
class _Sink:
    writes: list[Flush] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)

    def write(self, flush: Flush) -> Sequence[RejectedRow]:
        if self.fail:
            raise self.fail.pop(0)
        self.writes.append(flush)
        return []


@dataclass
class _Sender:
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> Awaitable[object]:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((topic, value))
        return _acked()


async def _acked() -> object:
    return None


class _Storage:
    def last_offsets(self, source: str) -> dict[int, int]:
        return {}

    def restore_open_windows(self, since_ms: int) -> list[RestoredWindow]:
        return []


class _NoRanges:
    async def read(self, ranges: Sequence[OffsetRange]) -> list[RangeRecord]:
        raise AssertionError("no flush is rebuilt here")


class _Observer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[int]]] = []

    async def partitions_assigned(self, partitions: set[int]) -> None:
        self.calls.append(("assigned", partitions))

    async def partitions_revoked(self, partitions: set[int]) -> None:
        self.calls.append(("revoked", partitions))

    async def partitions_lost(self, partitions: set[int]) -> None:
        self.calls.append(("lost", partitions))


@dataclass
class _Kit:
    worker: StreamWorker
    clock: _Clock
    consumer: _Consumer
    sink: _Sink
    sender: _Sender
    observer: _Observer
    notified: list[list[WindowAggregate]]

    def windows_sent(self) -> list[bytes]:
        topic = self.worker.settings.windows_topic
        return [value for t, value in self.sender.sent if t == topic]


async def _kit() -> _Kit:
    settings = worker_settings("127.0.0.1:1", "steps", partitions=2)
    clock = _Clock()
    consumer, sink, sender = _Consumer(clock), _Sink(), _Sender()
    worker = StreamWorker(
        settings,
        sink=sink,
        storage=_Storage(),
        consumer=consumer,
        dead_letters=TopicPublisher(sender, settings.dlq_topic),
        windows=TopicPublisher(sender, settings.windows_topic),
        ranges=_NoRanges(),
        clock=clock,
    )
    observer = _Observer()
    worker.observers.add(observer)
    notified: list[list[WindowAggregate]] = []
    worker.add_listener(lambda batch: notified.append(list(batch)))
    await worker.on_rebalance_complete({P0, P1})
    assert worker.partitions == [P0, P1]
    return _Kit(worker, clock, consumer, sink, sender, observer, notified)


def _event(n: int, ts_ms: int, pool: str = "alpha") -> bytes:
    return encode_event(
        WireEvent(
            event_id=f"e{n}",
            ts_ms=ts_ms,
            pool=pool,
            region="eu",
            outcome=Outcome.SUCCESS,
            latency_ms=12.0,
            source_host="host-1",
        )
    )


def _feed(worker: StreamWorker) -> None:
    """Records on both partitions; the window [NOW - 10 s, NOW - 8 s) closes at the next cycle
    (the newest event moves the watermark past it)."""
    for p, pool in ((P0, "alpha"), (P1, "bravo")):
        key = pool.encode()
        worker.process(p, 0, key, _event(10 * p, NOW_MS - 10_000, pool), NOW_MS)
        worker.process(p, 1, key, _event(10 * p + 1, NOW_MS - 9_500, pool), NOW_MS)
        worker.process(p, 2, key, _event(10 * p + 2, NOW_MS - 1_000, pool), NOW_MS)


def _count_steps(kit: _Kit, fail_at: Step | None = None) -> dict[Step, int]:
    """Wrap every step to count its calls; the step ``fail_at`` fails on its first call."""
    calls = dict.fromkeys(kit.worker.cycle_store.steps, 0)
    steps = kit.worker.cycle_store.steps

    def wrapped(step: Step, inner: StepFn) -> StepFn:
        async def run(cycle: Cycle, held: dict[Partition, PartitionState]) -> None:
            calls[step] += 1
            if step is fail_at and calls[step] == 1:
                raise PublishUnavailable(f"injected failure at {step.name}")
            await inner(cycle, held)

        return run

    for step, inner in list(steps.items()):
        steps[step] = wrapped(step, inner)
    return calls


def _assert_done_once(kit: _Kit) -> None:
    assert len(kit.sink.writes) == 1
    assert len(kit.consumer.progress) == 1
    (progress,) = kit.consumer.progress
    assert {p: c.offset for p, c in progress.items()} == {P0: 3, P1: 3}
    assert len(kit.notified) == 1
    sent = kit.windows_sent()
    assert sent, "the closed windows are published"
    assert len(sent) == len(set(sent)), "no window is published twice"
    assert kit.worker.assignment.cycle is None
    for p in (P0, P1):
        state = kit.worker.partition_state(p)
        assert state is not None
        assert state.committed == progress[p]


async def test_run_cycle_writes_publishes_notifies_and_commits_once() -> None:
    kit = await _kit()
    _feed(kit.worker)
    calls = _count_steps(kit)

    assert await kit.worker.run_cycle() is True

    assert all(n == 1 for n in calls.values()), calls
    assert len(kit.consumer.intents) == 1
    (intent,) = kit.consumer.intents
    assert {p: c.offset for p, c in intent.items()} == {P0: 0, P1: 0}  # unchanged offsets
    _assert_done_once(kit)
    assert kit.worker.stats.cycles == 1
    assert sum(len(f.scopes) for f in kit.sink.writes) > 0


async def test_an_empty_cycle_writes_nothing() -> None:
    kit = await _kit()
    assert await kit.worker.run_cycle() is True
    assert kit.sink.writes == []
    assert kit.consumer.intents == []


@pytest.mark.parametrize("step", [s for s in Step if s is not Step.DONE], ids=lambda s: s.name)
async def test_a_cycle_failed_at_any_step_resumes_there(step: Step) -> None:
    kit = await _kit()
    _feed(kit.worker)
    calls = _count_steps(kit, fail_at=step)

    assert await kit.worker.run_cycle() is False
    cycle = kit.worker.assignment.cycle
    assert cycle is not None
    assert cycle.step is step
    assert kit.worker.stats.paused
    assert {s: n for s, n in calls.items()} == {s: int(s <= step) for s in calls}
    assert kit.consumer.progress == []

    kit.clock.now_ms += 300
    assert await kit.worker.run_cycle() is True

    assert {s: n for s, n in calls.items()} == {
        s: 1 if s < step else 2 if s is step else 1 for s in calls
    }
    _assert_done_once(kit)
    assert not kit.worker.stats.paused


async def test_storage_down_during_the_write_retries_the_write_only() -> None:
    kit = await _kit()
    _feed(kit.worker)
    kit.sink.fail.append(SinkUnavailable("ClickHouse is down"))

    assert await kit.worker.run_cycle() is False
    assert kit.worker.stats.sink_failures == 1
    assert kit.windows_sent() == []
    assert kit.notified == []

    assert await kit.worker.run_cycle() is True
    assert len(kit.consumer.intents) == 2  # the fence is committed again before the write
    _assert_done_once(kit)


async def test_the_intent_commit_failing_writes_nothing_until_it_succeeds() -> None:
    kit = await _kit()
    _feed(kit.worker)
    kit.consumer.fail.append(BrokerUnavailable("no answer"))

    assert await kit.worker.run_cycle() is False
    assert kit.sink.writes == []
    assert kit.worker.stats.commit_failures == 1

    assert await kit.worker.run_cycle() is True
    _assert_done_once(kit)


async def test_windows_not_acknowledged_are_delivered_again_not_queued_twice() -> None:
    kit = await _kit()
    _feed(kit.worker)
    kit.sender.fail.append(TimeoutError("no acknowledgement"))

    assert await kit.worker.run_cycle() is False
    assert kit.worker.stats.publish_failures == 1
    assert kit.notified == []
    assert kit.consumer.progress == []

    assert await kit.worker.run_cycle() is True
    _assert_done_once(kit)


async def test_the_progress_commit_failing_is_retried_alone() -> None:
    kit = await _kit()
    _feed(kit.worker)

    async def fail_progress_once() -> None:
        original = kit.consumer.commit
        failed = False

        async def commit(points: Mapping[Partition, CommitPoint]) -> None:
            nonlocal failed
            if not failed and not any(p.meta.intent for p in points.values()):
                failed = True
                raise BrokerUnavailable("no answer to the progress commit")
            await original(points)

        kit.consumer.commit = commit  # type: ignore[method-assign]

    await fail_progress_once()
    assert await kit.worker.run_cycle() is False
    assert len(kit.sink.writes) == 1
    assert len(kit.notified) == 1
    cycle = kit.worker.assignment.cycle
    assert cycle is not None
    assert cycle.step is Step.COMMIT

    assert await kit.worker.run_cycle() is True
    _assert_done_once(kit)


async def test_partitions_lost_at_the_fence_drop_the_assignment_unwritten() -> None:
    kit = await _kit()
    _feed(kit.worker)
    kit.consumer.fail.append(PartitionsLost("the group rebalanced"))

    assert await kit.worker.run_cycle() is False

    assert kit.sink.writes == []
    assert kit.worker.partitions == []
    assert kit.worker.assignment.empty
    assert ("lost", {0, 1}) in kit.observer.calls
    assert kit.worker.stats.partitions_lost == 1


async def test_on_revoked_stores_commits_and_discards_the_assignment() -> None:
    kit = await _kit()
    _feed(kit.worker)
    before = kit.worker.assignment

    await kit.worker.on_revoked()

    assert len(kit.sink.writes) == 1
    assert len(kit.consumer.progress) == 1
    assert kit.worker.partitions == []
    assert kit.worker.assignment is not before
    assert kit.worker.assignment.empty
    assert kit.observer.calls[-1] == ("revoked", {0, 1})
    assert kit.worker.stats.abandoned_flushes == 0


async def test_on_revoked_with_storage_down_gives_up_unsaved() -> None:
    kit = await _kit()
    _feed(kit.worker)
    kit.sink.fail.append(SinkUnavailable("ClickHouse is down"))

    await kit.worker.on_revoked()

    assert kit.sink.writes == []
    assert kit.consumer.progress == []
    assert kit.worker.stats.abandoned_flushes == 1
    assert kit.worker.assignment.empty
    assert kit.observer.calls[-1] == ("revoked", {0, 1})


async def test_on_revoked_completes_a_pending_cycle_where_it_stopped() -> None:
    kit = await _kit()
    _feed(kit.worker)
    kit.sender.fail.append(TimeoutError("no acknowledgement"))
    assert await kit.worker.run_cycle() is False

    await kit.worker.on_revoked()

    _assert_done_once_after_revoke(kit)


def _assert_done_once_after_revoke(kit: _Kit) -> None:
    assert len(kit.sink.writes) == 1
    assert len(kit.consumer.progress) == 1
    assert len(kit.notified) == 1
    sent = kit.windows_sent()
    assert sent
    assert len(sent) == len(set(sent))
    assert kit.worker.assignment.empty


async def test_the_cycle_store_takes_and_completes_a_cycle_directly() -> None:
    kit = await _kit()
    _feed(kit.worker)
    store, held = kit.worker.cycle_store, kit.worker.assignment

    cycle = store.take(held, NOW_MS, dict.fromkeys(held.partitions, NOW_MS))
    assert cycle.step is Step.WRITE
    assert cycle.units_written == 0
    assert len(cycle.units) == 1
    assert set(cycle.units[0].intent) == {P0, P1}
    assert cycle.scopes, "the window [NOW - 10 s, NOW - 8 s) closed"
    assert held.record_times == []  # the cycle took them

    await store.complete(cycle, held.partitions)
    assert cycle.step is Step.DONE
    assert cycle.units_written == 1
    await store.complete(cycle, held.partitions)  # a completed cycle does nothing again

    assert len(kit.sink.writes) == 1
    assert len(kit.consumer.progress) == 1
    assert len(kit.notified) == 1


@dataclass
class _RawSink:
    """Raw event writes in order, beside the flush writes of ``sink`` (one shared log)."""

    log: list[tuple[str, str]]
    events: list[int] = field(default_factory=list)

    def write_raw(self, events: Sequence[WireEvent], dedup_token: str | None = None) -> int:
        self.log.append(("raw", str(dedup_token)))
        self.events.append(len(events))
        return len(events)


async def test_raw_events_are_written_before_their_flush_and_again_on_a_retried_write() -> None:
    settings = worker_settings("127.0.0.1:1", "steps-raw", partitions=2)
    clock = _Clock()
    consumer, sender = _Consumer(clock), _Sender()
    log: list[tuple[str, str]] = []

    class Sink(_Sink):
        def write(self, flush: Flush) -> Sequence[RejectedRow]:
            rejected = super().write(flush)
            log.append(("flush", flush.dedup_token()))
            return rejected

    sink, raw = Sink(), _RawSink(log)
    worker = StreamWorker(
        settings,
        sink=sink,
        storage=_Storage(),
        consumer=consumer,
        dead_letters=TopicPublisher(sender, settings.dlq_topic),
        windows=None,
        ranges=_NoRanges(),
        clock=clock,
        raw_events=raw,
    )
    await worker.on_rebalance_complete({P0, P1})
    _feed(worker)
    sink.fail.append(SinkUnavailable("ClickHouse is down"))

    assert await worker.run_cycle() is False  # raw written, then the flush failed
    assert await worker.run_cycle() is True
    (written,) = sink.writes
    token = written.dedup_token()
    assert log == [("raw", token), ("raw", token), ("flush", token)]  # same token: deduplicated
    assert raw.events == [6, 6]
    for p in (P0, P1):
        state = worker.partition_state(p)
        assert state is not None
        assert state.raw == []  # handed over with the flush, not kept
