"""Rebuilding an interrupted flush, without a broker: the dead letters a rebuild finds are counted
by kind like those of the record path (late, decode, empty), in the worker's stats and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from worker_kit import worker_settings

from schemas.events import Outcome
from schemas.wire import WireEvent, encode_event
from stream_app.core.contributions import Flush
from stream_app.storage.results import RestoredWindow
from stream_app.storage.sink import RejectedRow
from stream_app.worker.kafka_ranges import RangeRecord
from stream_app.worker.metrics import WorkerCollector
from stream_app.worker.partitions import NO_WATERMARK, CommitPoint, OffsetRange, RangeIntent
from stream_app.worker.publisher import Headers, TopicPublisher
from stream_app.worker.runtime import StreamWorker

NOW_MS = 1_800_000_000_000
T0 = NOW_MS - 60_000  # a multiple of the 2 s window


class _Sink:
    def __init__(self) -> None:
        self.flushes: list[Flush] = []

    def write(self, flush: Flush) -> list[RejectedRow]:
        self.flushes.append(flush)
        return []


class _Storage:
    def last_offsets(self, source: str) -> dict[int, int]:
        return {}

    def restore_open_windows(self, since_ms: int) -> list[RestoredWindow]:
        return []


class _Consumer:
    """Never reached by a rebuild: every call fails the test."""

    async def committed(self, partitions: Iterable[int]) -> dict[int, tuple[int, str]]:
        raise AssertionError("committed")

    async def commit(self, points: Mapping[int, CommitPoint]) -> None:
        raise AssertionError("commit")

    async def end_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        raise AssertionError("end_offsets")

    def last_fetch_ms(self, partition: int) -> int | None:
        raise AssertionError("last_fetch_ms")

    def pause(self, partitions: Iterable[int]) -> None:
        raise AssertionError("pause")

    def resume(self, partitions: Iterable[int]) -> None:
        raise AssertionError("resume")

    async def seek(self, partition: int, offset: int) -> None:
        raise AssertionError("seek")

    async def partition_count(self) -> int | None:
        raise AssertionError("partition_count")


class _Sender:
    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> Awaitable[object]:
        raise AssertionError("nothing is delivered here")


class _Ranges:
    def __init__(self, records: list[RangeRecord]) -> None:
        self.records = records

    async def read(self, ranges: Sequence[OffsetRange]) -> list[RangeRecord]:
        return self.records


def _event(n: int, ts_ms: int) -> bytes:
    return encode_event(
        WireEvent(
            event_id=f"e{n}",
            ts_ms=ts_ms,
            pool="alpha",
            region="eu",
            outcome=Outcome.SUCCESS,
            latency_ms=12.0,
            source_host="host-1",
        )
    )


def _dead_letter_metric(registry: CollectorRegistry, reason: str) -> float | None:
    value: Any = registry.get_sample_value(
        "proxywhirl_worker_dead_letters_total", {"reason": reason}
    )
    return None if value is None else float(value)


async def test_a_rebuild_counts_its_dead_letters_by_kind() -> None:
    records = [
        RangeRecord(0, 10, b"alpha", _event(1, T0 + 5_000)),  # watermark T0 + 3.5 s after it
        RangeRecord(0, 11, b"alpha", _event(2, T0 + 100)),  # window [T0, T0 + 2 s) closed: late
        RangeRecord(0, 12, b"alpha", b"{not json"),
        RangeRecord(0, 13, None, None),
    ]
    settings = worker_settings("127.0.0.1:1", "rebuild-units")
    sink = _Sink()
    worker = StreamWorker(
        settings,
        sink=sink,
        storage=_Storage(),
        consumer=_Consumer(),
        dead_letters=TopicPublisher(_Sender(), settings.dlq_topic),
        windows=None,
        ranges=_Ranges(records),
        clock=lambda: NOW_MS,
    )
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))

    after = await worker.rebuilder.rebuild([RangeIntent(0, 10, 13, NO_WATERMARK)])

    assert after is not None
    assert len(sink.flushes) == 1
    (written,) = sink.flushes
    assert sum(c.acc.requests for c in written.scopes) == 1  # the late event is not counted
    assert worker.stats.dead_letters == 3
    assert (worker.stats.late_events, worker.stats.decode_errors) == (1, 1)
    assert _dead_letter_metric(registry, "late") == 1
    assert _dead_letter_metric(registry, "decode") == 1
    assert _dead_letter_metric(registry, "empty") == 1


class _RawSink(_Sink):
    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.raw: list[tuple[int, str | None]] = []

    def write(self, flush: Flush) -> list[RejectedRow]:
        self.order.append("flush")
        return super().write(flush)

    def write_raw(self, events: Sequence[WireEvent], dedup_token: str | None = None) -> int:
        self.order.append("raw")
        self.raw.append((len(events), dedup_token))
        return len(events)


async def test_a_rebuild_rewrites_the_raw_events_before_the_flush_under_its_token() -> None:
    records = [RangeRecord(0, n, b"alpha", _event(n, T0 + 5_000 + n)) for n in range(20, 25)]
    records.append(RangeRecord(0, 25, b"alpha", b"{not json"))
    settings = worker_settings("127.0.0.1:1", "rebuild-raw")
    sink = _RawSink()
    worker = StreamWorker(
        settings,
        sink=sink,
        storage=_Storage(),
        consumer=_Consumer(),
        dead_letters=TopicPublisher(_Sender(), settings.dlq_topic),
        windows=None,
        ranges=_Ranges(records),
        clock=lambda: NOW_MS,
        raw_events=sink,
    )
    assert await worker.rebuilder.rebuild([RangeIntent(0, 20, 25, NO_WATERMARK)]) is not None
    (flush,) = sink.flushes
    assert sink.order == ["raw", "flush"]
    assert sink.raw == [(5, flush.dedup_token())]
