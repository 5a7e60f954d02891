"""The in-process pipeline takes columnar envelopes (schema v2): the same events sent as v1 or
v2 records give exactly the same stored partial sums, windows and statistics; a bad v2 record is
a dead letter with the decoder's reason; the producer's v2 envelopes reach the stored totals
through the in-process transport."""

from __future__ import annotations

import asyncio

from producer import MetricsProducer, ProducerSettings
from producer.columnar import encode_columnar
from producer.envelope import EnvelopeSchema, build_envelope
from schemas.aggregates import WindowAggregate
from schemas.events import Outcome
from schemas.wire import WireEvent, encode_event
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Flush
from stream_app.embedded.pipeline import EmbeddedPipeline
from stream_app.settings import PipelineSettings
from stream_app.storage.sink import RejectedRow

NOW_MS = 1_800_000_000_000


class Letters:
    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes, str]] = []

    def put(self, *, source: str, partition: int, offset: int, payload: bytes, reason: str) -> None:
        self.entries.append((offset, payload, reason))


class Sink:
    def __init__(self) -> None:
        self.flushes: list[Flush] = []

    def write(self, flush: Flush) -> list[RejectedRow]:
        self.flushes.append(flush)
        return []


def _acc(acc: Accumulator) -> tuple[object, ...]:
    return (
        acc.requests,
        acc.successes,
        {str(k): v for k, v in acc.outcomes.items()},
        dict(acc.status_classes),
        dict(acc.latency_buckets),
        acc.latency_sum_ms,
        acc.latency_min_ms,
        acc.latency_max_ms,
        acc.bytes_in,
        acc.bytes_out,
        acc.attempts,
        set(acc.proxies),
        acc.late_events,
    )


def _rows(flushes: list[Flush]) -> list[dict[object, tuple[object, ...]]]:
    return [
        {(c.window_start_ms, c.scope): _acc(c.acc) for c in [*f.scopes, *f.proxies]}
        for f in flushes
    ]


def _events(count: int, start_ms: int, host: str = "host-1") -> list[WireEvent]:
    return [
        WireEvent(
            event_id=f"{host}-{start_ms}-{i}",
            ts_ms=start_ms + i * 7,
            pool=("pool-a", "pool-b")[i % 2],
            region=("eu", "us", "ap")[i % 3],
            outcome=Outcome.SUCCESS if i % 4 else Outcome.TIMEOUT,
            latency_ms=0.5 + (i * 37) % 900 * 1.25,
            source_host=host,
            proxy_id=f"{i % 5:016x}" if i % 3 else None,
            status_code=(200, 503, None)[i % 3],
            bytes_in=i,
            bytes_out=3 * i,
            attempts=1 + i % 2,
            target_domain="example.com" if i % 2 else None,
        )
        for i in range(count)
    ]


def _records(schema: EnvelopeSchema) -> list[tuple[bytes, int]]:
    """Envelopes of one pool each, a bare event, and a late envelope (its window closed)."""
    records: list[tuple[bytes, int]] = []
    for n in range(6):
        events = _events(300, NOW_MS - 8_000 + n * 1_000, host=f"host-{n % 2}")
        for pool in ("pool-a", "pool-b"):
            mine = [e for e in events if e.pool == pool]
            env = build_envelope(
                pool, mine, source_host=f"host-{n % 2}", batch_id=f"b-{n}-{pool}", schema=schema
            )
            records.append((env.payload, NOW_MS + n))
    records.append((encode_event(_events(1, NOW_MS - 500, host="host-9")[0]), NOW_MS + 10))
    return records


def _run(schema: EnvelopeSchema) -> tuple[Sink, Letters, EmbeddedPipeline, list[WindowAggregate]]:
    sink, letters = Sink(), Letters()
    clock = [NOW_MS]
    pipeline = EmbeddedPipeline(
        PipelineSettings(window_s=10, grace_ms=2_000, idle_timeout_ms=10_000),
        sink,
        letters,
        clock=lambda: clock[0],
        source="embedded-t",
    )
    closed: list[WindowAggregate] = []
    pipeline.add_listener(closed.extend)
    records = _records(schema)
    for payload, at_ms in records[:8]:
        pipeline.process_record(payload, at_ms)
    asyncio.run(pipeline.flush_and_close())
    for payload, at_ms in records[8:]:
        pipeline.process_record(payload, at_ms)
    clock[0] = NOW_MS + 30_000  # every window is due
    asyncio.run(pipeline.flush_and_close())
    # One more record after the windows closed: its events are late.
    late = build_envelope(
        "pool-a",
        _events(20, NOW_MS - 9_000)[::2],
        source_host="host-1",
        batch_id="late",
        schema=schema,
    )
    pipeline.process_record(late.payload, NOW_MS + 30_000)
    asyncio.run(pipeline.flush_and_close())
    return sink, letters, pipeline, closed


def test_v2_records_give_exactly_the_sums_of_the_same_events_as_v1() -> None:
    sink_v1, letters_v1, p_v1, closed_v1 = _run("v1")
    sink_v2, letters_v2, p_v2, closed_v2 = _run("v2")
    assert p_v2.stats.events == p_v1.stats.events == 6 * 300 + 1 + 10
    assert p_v2.stats.records == p_v1.stats.records == 14
    assert p_v2.stats.dead_letters == p_v1.stats.dead_letters == 0
    assert p_v2.stats.late_events == p_v1.stats.late_events == 10
    assert len(sink_v2.flushes) == len(sink_v1.flushes) == 3
    assert _rows(sink_v2.flushes) == _rows(sink_v1.flushes)
    assert [f.ranges for f in sink_v2.flushes] == [f.ranges for f in sink_v1.flushes]
    assert closed_v2 == closed_v1
    requests: dict[str, int] = {}
    late = 0
    for f in sink_v2.flushes:
        for c in f.scopes:
            requests[c.scope.pool] = requests.get(c.scope.pool, 0) + c.acc.requests
            late += c.acc.late_events
    assert requests == {"pool-a": 900 + 1, "pool-b": 900}
    assert late == 10
    # The late events are kept as dead letters, one by one, as for v1.
    assert [e[2] for e in letters_v2.entries] == [e[2] for e in letters_v1.entries]
    assert [e[1] for e in letters_v2.entries] == [e[1] for e in letters_v1.entries]


def test_a_bad_v2_record_is_a_dead_letter_naming_the_field() -> None:
    sink, letters = Sink(), Letters()
    pipeline = EmbeddedPipeline(
        PipelineSettings(window_s=10, grace_ms=2_000), sink, letters, clock=lambda: NOW_MS
    )
    good = encode_columnar(  # numeric columns as JSON arrays, to spoil one index
        _events(4, NOW_MS - 1_000)[::2],
        batch_id="g",
        source_host="h",
        pool="pool-a",
        sent_ms=NOW_MS,
        packed=False,
    )
    bad = good.replace(b'"region":[0,', b'"region":[9,')
    assert bad != good
    pipeline.process_record(bad, NOW_MS)
    pipeline.process_record(good, NOW_MS)
    asyncio.run(pipeline.flush_and_close())
    ((offset, payload, reason),) = letters.entries
    assert (offset, payload) == (0, bad)
    assert "$.columns.region[0]" in reason
    assert pipeline.stats.events == 2
    assert sum(c.acc.requests for f in sink.flushes for c in f.scopes) == 2


def test_the_producers_v2_envelopes_through_the_in_process_transport() -> None:
    sink, letters = Sink(), Letters()
    pipeline = EmbeddedPipeline(
        PipelineSettings(window_s=10, grace_ms=60_000, flush_interval_ms=50), sink, letters
    )

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        producer = MetricsProducer(
            ProducerSettings(
                source_host="host-1",
                fleet_key="k" * 32,
                envelope_schema="v2",
                batch_max_events=64,
                batch_max_age_ms=20,
                close_at_exit=False,
            ),
            pipeline.transport(),
        )
        for i in range(3_000):
            assert producer.emit(
                pool=("pool-a", "pool-b", "pool-c")[i % 3], region="eu", latency_ms=float(i % 100)
            )
        assert await asyncio.to_thread(producer.flush, 20.0)
        await asyncio.to_thread(producer.close, 10.0)
        stop.set()
        await task

    asyncio.run(main())
    assert letters.entries == []
    assert pipeline.stats.events == 3_000
    totals: dict[str, int] = {}
    for f in sink.flushes:
        for c in f.scopes:
            totals[c.scope.pool] = totals.get(c.scope.pool, 0) + c.acc.requests
    assert totals == {"pool-a": 1_000, "pool-b": 1_000, "pool-c": 1_000}
