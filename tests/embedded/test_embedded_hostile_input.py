"""The in-process pipeline (and HTTP ingest, which feeds it) under hostile records.

Same rules as the worker: decoding is total, every bad record becomes a dead letter with the
decoder's reason, an event far ahead of its arrival is dead-lettered as ``clock_skew`` and
cannot make other hosts' events late, a row storage refuses is dead-lettered while the rest of
the flush is stored, and nothing raises out of ``process_record``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from schemas.errors import DecodeError
from schemas.wire import decode_record
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Contribution, Flush, ScopeKey
from stream_app.embedded.pipeline import EmbeddedPipeline
from stream_app.settings import PipelineSettings
from stream_app.storage.sink import RejectedRow

CORPUS = Path(__file__).parents[1] / "schemas" / "hostile_records" / "refused"
NOW_MS = 1_800_000_000_000
YEAR_MS = 365 * 86_400_000


class Letters:
    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def put(self, *, source: str, partition: int, offset: int, payload: bytes, reason: str) -> None:
        self.entries.append({"offset": offset, "payload": payload, "reason": reason})


class Sink:
    """Stores flushes in memory; refuses rows of one poisoned region for their data."""

    def __init__(self) -> None:
        self.flushes: list[Flush] = []

    def write(self, flush: Flush) -> list[RejectedRow]:
        refused = [c for c in flush.scopes if c.scope.region == "poisoned"]
        self.flushes.append(flush)
        return [RejectedRow(c, "scope", "value out of range") for c in refused]


def event(ts_ms: int, host: str = "host-1", region: str = "eu") -> bytes:
    return json.dumps(
        {
            "event_id": f"{host}-{ts_ms}",
            "ts_ms": ts_ms,
            "pool": "pool-a",
            "region": region,
            "outcome": "success",
            "latency_ms": 3.0,
            "source_host": host,
        }
    ).encode()


def pipeline(sink: Sink, letters: Letters) -> EmbeddedPipeline:
    settings = PipelineSettings(window_s=10, grace_ms=5_000, idle_timeout_ms=10_000)
    return EmbeddedPipeline(settings, sink, letters, clock=lambda: NOW_MS, source="embedded-t")


def test_every_hostile_record_is_a_dead_letter_with_the_decoders_reason() -> None:
    letters = Letters()
    p = pipeline(Sink(), letters)
    corpus = sorted(CORPUS.iterdir())
    for path in corpus:
        p.process_record(path.read_bytes(), NOW_MS)
    expected = []
    for path in corpus:
        try:
            decode_record(path.read_bytes())
        except DecodeError as exc:
            expected.append(str(exc))
    assert [e["reason"] for e in letters.entries] == expected
    assert p.stats.dead_letters == len(corpus)
    assert p.stats.events == 0


def test_a_host_a_year_ahead_is_dead_lettered_and_others_are_not_late() -> None:
    letters = Letters()
    sink = Sink()
    p = pipeline(sink, letters)
    p.process_record(event(NOW_MS + YEAR_MS, host="host-bad-clock"), NOW_MS)
    for i in range(500):
        p.process_record(event(NOW_MS - 2_000 + i, host=f"host-{i % 3}"), NOW_MS + i)
    closed = asyncio.run(p.flush_and_close())
    assert closed == []  # nothing due: the watermark did not jump ahead
    assert p.stats.late_events == 0
    assert p.stats.out_of_range_events == 1
    (letter,) = letters.entries
    assert str(letter["reason"]).startswith("clock_skew:")
    assert "host-bad-clock" in str(letter["reason"])
    assert p.aggregator.stats.clock_skew_by_host == {"host-bad-clock": 1}
    assert sum(c.acc.requests for f in sink.flushes for c in f.scopes) == 500


def test_rows_refused_by_storage_are_dead_lettered_and_the_rest_counts() -> None:
    letters = Letters()
    sink = Sink()
    p = pipeline(sink, letters)
    p.process_record(event(NOW_MS - 1_000), NOW_MS)
    p.process_record(event(NOW_MS - 1_000, region="poisoned"), NOW_MS)
    asyncio.run(p.flush_and_close())
    (letter,) = letters.entries
    assert str(letter["reason"]).startswith("rejected by storage")
    assert b'"region":"poisoned"' in letter["payload"]  # type: ignore[operator]
    assert p.stats.rejected_rows == 1


def test_an_exception_while_aggregating_is_a_dead_letter_not_a_crash() -> None:
    letters = Letters()
    p = pipeline(Sink(), letters)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug in the core")

    p.aggregator.add = broken  # type: ignore[method-assign]
    p.process_record(event(NOW_MS), NOW_MS)
    (letter,) = letters.entries
    assert letter["reason"] == "internal: RuntimeError: bug in the core"
    assert p.stats.consume_errors == 1


def test_a_rejected_row_becomes_a_json_document() -> None:
    acc = Accumulator()
    acc.requests = 2
    row = RejectedRow(Contribution(ScopeKey("p", "r"), 0, 10, acc), "scope", "why")
    assert json.loads(row.document())["requests"] == 2


class RawSink:
    """Records the raw writes it is given."""

    def __init__(self) -> None:
        self.raw: list[tuple[int, str | None]] = []

    def write_raw(self, events: object, dedup_token: str | None = None) -> int:
        count = len(events)  # type: ignore[arg-type]
        self.raw.append((count, dedup_token))
        return count


def test_raw_events_are_written_before_their_flush_under_its_token() -> None:
    letters = Letters()
    sink = Sink()
    raw = RawSink()
    settings = PipelineSettings(window_s=10, grace_ms=5_000, idle_timeout_ms=10_000)
    p = EmbeddedPipeline(
        settings, sink, letters, clock=lambda: NOW_MS, source="embedded-raw", raw_events=raw
    )
    for i in range(3):
        p.process_record(event(NOW_MS - 1_000 + i), NOW_MS)
    p.process_record(b"{broken", NOW_MS)  # a dead letter has no raw event
    asyncio.run(p.flush_and_close())
    (flush,) = sink.flushes
    assert raw.raw == [(3, flush.dedup_token())]
    p.process_record(event(NOW_MS), NOW_MS)
    asyncio.run(p.flush_and_close())
    assert raw.raw[1] == (1, sink.flushes[1].dedup_token())
