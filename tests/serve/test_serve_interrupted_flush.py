"""A flush cut short half-way through its materialized views (the process killed during the
insert: the 10 s table has it, ``source_offsets`` not) is written again as one flush at start-up,
with the same deduplication token: nothing is counted twice, the offset gets stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from serve_kit import INGEST_TOKEN, QUEUE_RECORDS, IngestRig, envelope, event

from stream_app.dead_letters import FileDeadLetters
from stream_app.embedded.handoff import DecodedRecord
from stream_app.embedded.pipeline import EmbeddedPipeline, wall_clock_ms
from stream_app.serve.ingestor import INGEST_SOURCE, InboxTrimmingSink, stored_offset
from stream_app.settings import PipelineSettings
from stream_app.storage.engines import quote_identifier
from stream_app.storage.sink import ClickHouseSink

AUTH = {"authorization": f"Bearer {INGEST_TOKEN}"}


def _pipeline(rig: IngestRig, tmp_path: Path) -> EmbeddedPipeline:
    sink = InboxTrimmingSink(ClickHouseSink(rig.storage, rig.storage_settings), rig.inbox)
    return EmbeddedPipeline(
        PipelineSettings(), sink, FileDeadLetters(tmp_path / "dead-letters.jsonl")
    )


def _stored_requests(rig: IngestRig) -> int:
    db = quote_identifier(rig.database)
    ((total,),) = rig.storage.rows(f"SELECT sum(requests) FROM {db}.agg_10s")
    return int(total)


def test_a_flush_cut_short_is_written_again_once(rig: IngestRig, tmp_path: Path) -> None:
    rig.ingestor.recover(rig.storage, rig.database)
    for n in range(QUEUE_RECORDS):
        body = envelope(f"cut-{n}", [event(10 * n + i) for i in range(10)])
        assert rig.client.post("/api/v1/ingest", json=body, headers=AUTH).status_code == 200
    records = rig.handoff.take(10)
    rig.handoff.done(len(records))
    # Two more, accepted after the cut flush began: a plain replay of the inbox would merge
    # them into one flush of offsets 1-4 (another token) and count 1-2 twice.
    for n in range(QUEUE_RECORDS, 2 * QUEUE_RECORDS):
        body = envelope(f"cut-{n}", [event(10 * n + i) for i in range(10)])
        assert rig.client.post("/api/v1/ingest", json=body, headers=AUTH).status_code == 200
    rig.handoff.done(len(rig.handoff.take(10)))  # the first run dies before aggregating them

    # The first run: the flush of offsets 1-2 is noted, then cut short after the 10 s table
    # (its source_offsets view detached: what a kill between the views leaves behind).
    first = _pipeline(rig, tmp_path)
    for record in records:
        assert isinstance(record, DecodedRecord)
        first.process_decoded(record, wall_clock_ms())
    flush = first.aggregator.flush()
    (ours,) = [r for r in flush.ranges if r.source == INGEST_SOURCE]
    assert (ours.first_offset, ours.last_offset) == (1, 2)
    view = f"{quote_identifier(rig.database)}.source_offsets_mv"
    rig.storage.command(f"DETACH TABLE {view}")
    try:
        rig.inbox.begin_flush(1, 2)
        ClickHouseSink(rig.storage, rig.storage_settings).write(flush)  # then the kill
    finally:
        rig.storage.command(f"ATTACH TABLE {view}")
    assert _stored_requests(rig) == 20
    assert stored_offset(rig.storage, rig.database) == 0

    # The restart: the cut flush first, as one flush, then the rest of the inbox.
    redo = rig.ingestor.interrupted_flush(rig.storage, rig.database)
    assert [r.offset for r in redo] == [1, 2]
    second = _pipeline(rig, tmp_path)
    for record in redo:
        second.process_decoded(record, wall_clock_ms())
    asyncio.run(second.flush_and_close())
    assert _stored_requests(rig) == 20, "the cut flush was counted twice"
    assert stored_offset(rig.storage, rig.database) == 2
    assert rig.inbox.flush_intent() is None
    assert rig.ingestor.recover(rig.storage, rig.database) == 2  # offsets 3 and 4
    rest = rig.handoff.take(10)
    for record in rest:
        assert isinstance(record, DecodedRecord)
        second.process_decoded(record, wall_clock_ms())
    asyncio.run(second.flush_and_close())
    assert _stored_requests(rig) == 40
    assert stored_offset(rig.storage, rig.database) == 4
    assert rig.inbox.pending_count() == 0
